# Kernel options slruntime needs (namespaces, cgroup2 controllers, seccomp filters),
# only with the "slruntime" distro feature: adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'linux-slruntime.inc', '', d)}
