# /etc/inittab of slruntime images (busybox init runs slr-sysinit), only with the
# "slruntime" distro feature: adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'busybox-inittab-slruntime.inc', '', d)}
