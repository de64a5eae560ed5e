SUMMARY = "slruntime: the OCI runtime, its compact build and the image layout"
LICENSE = "MIT"

inherit packagegroup

# slruntime-compact needs the static libpython of the "slruntime" distro feature.
SLRUNTIME_COMPACT = "${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'slruntime-compact', '', d)}"

RDEPENDS:${PN} = "slruntime ${SLRUNTIME_COMPACT} slruntime-rootfs-config \
                  ${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'slruntime-rootfs-config-systemd', 'slruntime-rootfs-config-busybox', d)}"
