SUMMARY = "slruntime frozen into one static executable (the compact slr)"
DESCRIPTION = "The slr command with the slruntime package, its pure-Python \
               dependencies and the standard-library modules they import frozen into \
               one executable linked against the static libpython: no .py/.pyc files \
               and no stdlib directory at run time."

require slruntime.inc

# The static libpython comes from the python3 bbappend of this layer, which is gated on
# the distro feature.
inherit features_check python3native
REQUIRED_DISTRO_FEATURES = "slruntime"

DEPENDS += "libcap libffi python3 python3-prctl python3-pyseccomp"

# The freeze tool compiles _json, _ctypes (CPython's Modules/) and _prctl (python-prctl)
# into the executable: their sources must match the target's python3 and python3-prctl.
# SLRUNTIME_CPYTHON_PV must equal the PV of the python3 recipe in use (do_configure
# checks it against the target's patchlevel.h).
SLRUNTIME_CPYTHON_PV ?= "3.14.7"
SLRUNTIME_CPYTHON_SHA256[3.14.6] = "143b1dddefaec3bd2e21e3b839b34a2b7fb9842272883c576420d605e9f30c63"
SLRUNTIME_CPYTHON_SHA256[3.14.7] = "3b48dac8fb59f62eaa67ac83c1eb12bda1b7a08406dd286e252c11a66be27f81"

SRC_URI += "https://www.python.org/ftp/python/${SLRUNTIME_CPYTHON_PV}/Python-${SLRUNTIME_CPYTHON_PV}.tar.xz;name=cpython \
            git://github.com/seveas/python-prctl;protocol=https;branch=main;name=prctl;destsuffix=python-prctl"
SRC_URI[cpython.sha256sum] = "${@d.getVarFlag('SLRUNTIME_CPYTHON_SHA256', d.getVar('SLRUNTIME_CPYTHON_PV')) or ''}"
# python-prctl 1.8.1, the revision meta-python's python3-prctl builds.
SRCREV_prctl = "5e12e398eb5c4e30d7b29b02458c76d2cc780700"
SRCREV_FORMAT = "prctl"

B = "${WORKDIR}/build"

do_configure() {
    headers="${STAGING_INCDIR}/python${PYTHON_BASEVERSION}/patchlevel.h"
    version=$(sed -n 's/^#define PY_VERSION *"\([^"]*\)".*/\1/p' "$headers")
    if [ "$version" != "${SLRUNTIME_CPYTHON_PV}" ]; then
        bbfatal "the target's python3 is $version but SLRUNTIME_CPYTHON_PV is ${SLRUNTIME_CPYTHON_PV}: set it (and its SLRUNTIME_CPYTHON_SHA256 flag) to $version"
    fi
}

do_compile() {
    # Native python3 has the target's major.minor (oe-core builds both from one recipe):
    # the frozen bytecode it writes runs on the target.
    ${PYTHON} ${S}/compact/build_compact.py \
        --output ${B}/slr \
        --build-dir ${B}/slr.build \
        --cc "${CC}" --nm "${NM}" \
        --python-include ${STAGING_INCDIR}/python${PYTHON_BASEVERSION} \
        --libpython ${STAGING_LIBDIR}/python${PYTHON_BASEVERSION}/config-${PYTHON_BASEVERSION}-*/libpython${PYTHON_BASEVERSION}.a \
        --stdlib ${STAGING_LIBDIR}/python${PYTHON_BASEVERSION} \
        --path ${STAGING_DIR_HOST}${PYTHON_SITEPACKAGES_DIR} \
        --python-src ${UNPACKDIR}/Python-${SLRUNTIME_CPYTHON_PV} \
        --prctl-src ${UNPACKDIR}/python-prctl \
        --package-dir ${S}/slruntime \
        --exclude-module slruntime.profile \
        --no-strip
}

do_install() {
    install -D -m 0755 ${B}/slr ${D}${bindir}/slr-compact
}

# ctypes opens libseccomp.so.2 by soname at run time.
RDEPENDS:${PN} = "libseccomp"
RRECOMMENDS:${PN} = "slruntime-rootfs-config"
