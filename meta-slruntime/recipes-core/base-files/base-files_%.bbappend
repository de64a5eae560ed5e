# /etc/fstab of slruntime images (read-only root, tmpfs layout), only with the
# "slruntime" distro feature: adding the layer alone changes nothing.
require ${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'base-files-slruntime.inc', '', d)}
