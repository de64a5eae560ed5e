SUMMARY = "OCI bundles for testing slruntime on the target"
DESCRIPTION = "/usr/share/slr/bundles/busybox: a rootfs of busybox applet links \
               and a config.json that bind-mounts the image's own busybox and \
               libraries read-only into it: no second copy of any binary."
HOMEPAGE = "https://github.com/slruntime/slruntime"
SECTION = "tests"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://busybox-config.json"
S = "${UNPACKDIR}"

inherit allarch

# Only files are installed: no compiler needed.
INHIBIT_DEFAULT_DEPS = "1"

# Applets the oeqa cases and the ptest suite run inside the container.
SLRUNTIME_BUNDLE_APPLETS = "sh true false sleep cat echo ls id env mkdir rm touch head \
                            grep sed ps kill hostname wc uname mount stat"
SLRUNTIME_BUNDLE_DIR = "${datadir}/slr/bundles/busybox"

do_install() {
    rootfs=${D}${SLRUNTIME_BUNDLE_DIR}/rootfs
    install -d $rootfs/bin $rootfs/lib $rootfs/usr/lib $rootfs/proc $rootfs/dev \
               $rootfs/tmp $rootfs/etc
    # Mount point of the image's busybox (config.json binds it here).
    touch $rootfs/bin/busybox
    for applet in ${SLRUNTIME_BUNDLE_APPLETS}; do
        ln -s busybox $rootfs/bin/$applet
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > $rootfs/etc/passwd
    printf 'root:x:0:\nnogroup:x:65534:\n' > $rootfs/etc/group
    install -m 0644 ${UNPACKDIR}/busybox-config.json ${D}${SLRUNTIME_BUNDLE_DIR}/config.json
}

FILES:${PN} += "${SLRUNTIME_BUNDLE_DIR}"
# The bundle runs the image's busybox through the bind mount.
RDEPENDS:${PN} = "busybox"
