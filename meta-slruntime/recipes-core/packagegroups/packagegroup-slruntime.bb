SUMMARY = "slruntime: the frozen slr and the image layout"
DESCRIPTION = "What an slruntime image installs: /usr/bin/slr (slruntime-compact, no \
               Python on the target), slr.conf, the default seccomp profile and the init \
               files of the distro's init system."
LICENSE = "MIT"

inherit packagegroup features_check
# slruntime-compact links the static libpython of the "slruntime" distro feature.
REQUIRED_DISTRO_FEATURES = "slruntime"

SLRUNTIME_INIT_FILES = "${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'slruntime-rootfs-config-systemd', 'slruntime-rootfs-config-busybox', d)}"

# The Python package (slruntime, slr-python) is not here: images that want it opt in
# with IMAGE_FEATURES "slruntime-python" (slruntime-image.inc).
RDEPENDS:${PN} = "${SLRUNTIME_INIT_FILES} slruntime-compact slruntime-rootfs-config"
