SUMMARY = "slruntime, a secure OCI container runtime: the Python package"
DESCRIPTION = "The slruntime Python package and its command as slr-python.  Images run \
               the frozen slr of slruntime-compact; this package is for test images \
               (IMAGE_FEATURES slruntime-python) and, as slruntime-native, for \
               `slr profile` at build time (slruntime_seccomp_profile.bbclass)."

require slruntime.inc

LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "${SLRUNTIME_LICENSE_CHKSUM}"

inherit python_setuptools_build_meta

# /usr/bin/slr belongs to slruntime-compact, the frozen runtime images run: the Python
# package's command is slr-python, so both fit in one image.
do_install:append() {
    mv ${D}${bindir}/slr ${D}${bindir}/slr-python
}

# The standard-library split packages slruntime imports (oe-core's python3-manifest.json):
# core (os, signal, struct, subprocess, select, argparse...), ctypes (libc and libseccomp
# calls), fcntl, io (socket, termios, tempfile), json (config.json and state), shell
# (shlex) and terminal (tty).  libseccomp is opened by soname through ctypes.
RDEPENDS:${PN} = "libseccomp python3-core python3-ctypes python3-fcntl python3-io \
                  python3-json python3-prctl python3-pyseccomp python3-shell \
                  python3-terminal"
# slruntime-native runs `slr profile` at build time (slruntime_seccomp_profile.bbclass),
# which only needs what that class stages: capstone, libseccomp.
RDEPENDS:${PN}:class-native = ""

# The default configuration and seccomp profile come with the image layout.
RRECOMMENDS:${PN} = "slruntime-rootfs-config"
RRECOMMENDS:${PN}:class-native = ""

BBCLASSEXTEND = "native"
