# The Raspberry Pi kernel (meta-raspberrypi, when that layer is present) gets the same
# fragment as linux-yocto, only with the "slruntime" distro feature.  The .inc is found
# on BBPATH, in this layer's recipes-kernel/linux.
require ${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'recipes-kernel/linux/linux-slruntime.inc', '', d)}
