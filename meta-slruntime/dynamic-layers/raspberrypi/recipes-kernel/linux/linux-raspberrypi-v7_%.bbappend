# The second kernel of meta-raspberrypi's raspberrypi-armv7 machine gets the fragment
# too, only with the "slruntime" distro feature.  The .inc is found on BBPATH, in this
# layer's recipes-kernel/linux.
require ${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'recipes-kernel/linux/linux-slruntime.inc', '', d)}
