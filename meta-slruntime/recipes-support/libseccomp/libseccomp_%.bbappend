# A native libseccomp for `slr profile` at build time (its system call tables), only
# with the "slruntime" distro feature: adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'libseccomp-slruntime.inc', '', d)}
