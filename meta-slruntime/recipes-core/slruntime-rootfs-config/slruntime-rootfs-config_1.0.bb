SUMMARY = "Image layout of slruntime images: init, tmpfs directories, slr configuration"
DESCRIPTION = "Installs the files listed in files/layout.manifest, the single source \
               of truth shared with the QEMU CI image: slr.conf, the default seccomp \
               profile, the busybox early-boot script and the systemd tmpfiles.d file."
HOMEPAGE = "https://github.com/slruntime/slruntime"
SECTION = "base"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

inherit allarch

# Only files are installed: no compiler needed.
INHIBIT_DEFAULT_DEPS = "1"

SLRUNTIME_LAYOUT_DIR := "${THISDIR}/files"

# Manifest entries owned by other recipes: base-files (fstab and the directories it
# creates) and busybox-inittab (inittab).  The bbappends in recipes-core/base-files and
# recipes-core/busybox make those recipes install the files of this directory.
SLRUNTIME_LAYOUT_FROM_OTHER_RECIPES = "${sysconfdir}/fstab ${sysconfdir}/inittab /run /tmp \
                                       ${localstatedir}/volatile"

def slruntime_layout_sources(d):
    """file:// entries for every file the manifest lists (not its 'dir' lines)."""
    import os
    manifest = os.path.join(d.getVar("SLRUNTIME_LAYOUT_DIR"), "layout.manifest")
    # Re-parse this recipe when the manifest changes.
    bb.parse.mark_dependency(d, manifest)
    sources = []
    with open(manifest) as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if fields and fields[0] != "dir":
                sources.append("file://" + fields[0])
    return " ".join(sources)

SRC_URI = "file://layout.manifest ${@slruntime_layout_sources(d)}"

S = "${UNPACKDIR}"

do_install() {
    sed -e 's/#.*//' ${UNPACKDIR}/layout.manifest | while read -r source destination mode; do
        [ -n "$source" ] || continue
        case " ${SLRUNTIME_LAYOUT_FROM_OTHER_RECIPES} " in
        *" $destination "*) continue ;;
        esac
        if [ "$source" = dir ]; then
            install -d -m "$mode" ${D}$destination
        else
            install -D -m "$mode" ${UNPACKDIR}/$source ${D}$destination
        fi
    done
}

PACKAGES =+ "${PN}-busybox ${PN}-systemd"
# The rest (/etc/slr, /var/lib/slr) goes to ${PN} by the default FILES.
FILES:${PN}-busybox += "${sysconfdir}/init.d/slr-sysinit"
FILES:${PN}-systemd += "${nonarch_libdir}/tmpfiles.d/slruntime.conf"
CONFFILES:${PN} = "${sysconfdir}/slr/slr.conf ${sysconfdir}/slr/seccomp/default.json"

# slr-sysinit is a busybox shell script (mount, grep, hostname).
RDEPENDS:${PN}-busybox = "busybox"
RRECOMMENDS:${PN} = "${@bb.utils.contains('DISTRO_FEATURES', 'systemd', '${PN}-systemd', '${PN}-busybox', d)}"
