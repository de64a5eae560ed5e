SUMMARY = "slruntime: the OCI runtime, its compact build and the image layout"
DESCRIPTION = "Everything an slruntime image installs: slr, slr-compact, slr.conf, the \
               default seccomp profile and the init files of the distro's init system."
LICENSE = "MIT"

inherit packagegroup

# slruntime-compact needs the static libpython of the "slruntime" distro feature.
SLRUNTIME_COMPACT = "${@bb.utils.contains('DISTRO_FEATURES', 'slruntime', 'slruntime-compact', '', d)}"
SLRUNTIME_INIT_FILES = "${@bb.utils.contains('DISTRO_FEATURES', 'systemd', 'slruntime-rootfs-config-systemd', 'slruntime-rootfs-config-busybox', d)}"

RDEPENDS:${PN} = "${SLRUNTIME_COMPACT} ${SLRUNTIME_INIT_FILES} slruntime \
                  slruntime-rootfs-config"
