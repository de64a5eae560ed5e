SUMMARY = "slr, the slruntime OCI runtime frozen into one executable"
DESCRIPTION = "The slr command as two executables: /usr/libexec/slruntime/slr, the \
               slruntime package, its pure-Python dependencies and the standard-library \
               modules they import frozen into one executable linked against the static \
               libpython (no interpreter, no .py/.pyc files and no stdlib directory on the \
               target), and /usr/bin/slr, a small static C front that serves `slr pool run` \
               itself and executes the frozen runtime for every other command line. \
               slruntime-compact-runc adds /usr/bin/runc for stacks that call runc \
               (virtual-runc)."

require slruntime.inc

# What the executable holds: the runtime (Apache-2.0, runtime/LICENSE), the static
# libpython and CPython's _json and _ctypes compiled from its sources (PSF-2.0),
# python-prctl's _prctlmodule.c (GPL-3.0-only), and libcap, which the toolchain links
# statically when its archive is in the sysroot, as oe-core's libcap installs it
# (BSD-3-Clause or GPL-2.0-only).  libffi, libseccomp and the C library stay shared in
# the frozen runtime; the front links the C library statically (glibc's libc.a:
# LGPL-2.1-or-later).
LICENSE = "Apache-2.0 AND GPL-3.0-only AND PSF-2.0 AND (BSD-3-Clause OR GPL-2.0-only) AND LGPL-2.1-or-later"
LIC_FILES_CHKSUM = "${SLRUNTIME_LICENSE_CHKSUM} \
                    file://${UNPACKDIR}/Python-${SLRUNTIME_CPYTHON_PV}/LICENSE;md5=${SLRUNTIME_CPYTHON_LICENSE_MD5} \
                    file://${UNPACKDIR}/python-prctl/COPYING;md5=1475481f9ec754d758859bd2c75f6f6f \
                    file://${COMMON_LICENSE_DIR}/BSD-3-Clause;md5=550794465ba0ec5312d6919e203a55f9 \
                    file://${COMMON_LICENSE_DIR}/LGPL-2.1-or-later;md5=2a4f4fd2128ea2f65047ee63fbca9f68"

# The static libpython comes from the python3 bbappend of this layer, which is gated on
# the distro feature.
inherit features_check python3native
REQUIRED_DISTRO_FEATURES = "slruntime"

# The front's static link needs nothing more: the C library's libc.a is in every target
# recipe's sysroot (virtual/libc is a base dependency, and oe-core's glibc stages
# ${libdir}/*.a; glibc-staticdev only packages it for images and SDKs).
DEPENDS += "libcap libffi python3 python3-prctl python3-pyseccomp"

# slr as the system's OCI runtime, the way meta-virtualization selects runc: its stacks
# (containerd, docker, cri-o, podman) RDEPEND on VIRTUAL-RUNTIME_container_runtime,
# "virtual-runc" by default, which PREFERRED_PROVIDER_virtual/runc = "slruntime-compact"
# resolves to the slruntime-compact-runc package.
PROVIDES += "virtual/runc"

# The freeze tool compiles _json, _ctypes (CPython's Modules/) and _prctl (python-prctl)
# into the executable: their sources must match the target's python3 and python3-prctl.
# The CPython release is the one of the python3 recipe in use (PREFERRED_VERSION_python3,
# else the newest python3_*.bb on BBPATH: oe-core's), with that recipe's source and
# license checksums; do_configure checks it against the target's patchlevel.h.
def slruntime_python3_recipe(d, field):
    """pv, sha256 or license_md5 of the python3 recipe this build uses."""
    import fnmatch
    import glob
    import re
    recipes = {}
    for layer in (d.getVar("BBPATH") or "").split(":"):
        for path in glob.glob(os.path.join(layer, "recipes-devtools", "python", "python3_*.bb")):
            recipes.setdefault(os.path.basename(path)[len("python3_"):-len(".bb")], path)
    preferred = d.getVar("PREFERRED_VERSION_python3")
    if preferred:
        recipes = {pv: path for pv, path in recipes.items()
                   if fnmatch.fnmatchcase(pv, preferred.replace("%", "*"))}
    if not recipes:
        bb.fatal("slruntime-compact: no python3 recipe (recipes-devtools/python/python3_*.bb) on BBPATH")
    newest = None
    for pv in recipes:
        if newest is None or bb.utils.vercmp_string(pv, newest) > 0:
            newest = pv
    if field == "pv":
        return newest
    # A python3 upgrade renames the recipe: re-parse this one then.
    bb.parse.mark_dependency(d, recipes[newest])
    with open(recipes[newest]) as f:
        text = f.read()
    pattern = {"sha256": r'^SRC_URI\[sha256sum\] = "([0-9a-f]{64})"',
               "license_md5": r'file://LICENSE;md5=([0-9a-f]{32})'}[field]
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1) if match else ""

SLRUNTIME_CPYTHON_PV ?= "${@slruntime_python3_recipe(d, 'pv')}"
SLRUNTIME_CPYTHON_SHA256 ?= "${@slruntime_python3_recipe(d, 'sha256')}"
SLRUNTIME_CPYTHON_LICENSE_MD5 ?= "${@slruntime_python3_recipe(d, 'license_md5')}"

SRC_URI += "https://www.python.org/ftp/python/${SLRUNTIME_CPYTHON_PV}/Python-${SLRUNTIME_CPYTHON_PV}.tar.xz;name=cpython \
            git://github.com/seveas/python-prctl;protocol=https;branch=main;name=prctl;destsuffix=python-prctl"
SRC_URI[cpython.sha256sum] = "${SLRUNTIME_CPYTHON_SHA256}"
# python-prctl 1.8.1, the revision meta-python's python3-prctl builds.
SRCREV_prctl = "5e12e398eb5c4e30d7b29b02458c76d2cc780700"
SRCREV_FORMAT = "prctl"

B = "${WORKDIR}/build"

do_configure() {
    headers="${STAGING_INCDIR}/python${PYTHON_BASEVERSION}/patchlevel.h"
    version=$(sed -n 's/^#define PY_VERSION *"\([^"]*\)".*/\1/p' "$headers")
    if [ "$version" != "${SLRUNTIME_CPYTHON_PV}" ]; then
        bbfatal "the target's python3 is $version but SLRUNTIME_CPYTHON_PV is ${SLRUNTIME_CPYTHON_PV}: set it and SLRUNTIME_CPYTHON_SHA256 to those of $version"
    fi
}

do_compile() {
    # Native python3 has the target's major.minor (oe-core builds both from one recipe):
    # the frozen bytecode it writes runs on the target.
    # The front (${B}/slr) executes the frozen runtime from its installed path.
    ${PYTHON} ${S}/compact/build_compact.py \
        --output ${B}/slr \
        --frozen-output ${B}/libexec/slruntime/slr \
        --frozen-path ${libexecdir}/slruntime/slr \
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
    install -D -m 0755 ${B}/slr ${D}${bindir}/slr
    install -D -m 0755 ${B}/libexec/slruntime/slr ${D}${libexecdir}/slruntime/slr
    ln -s slr ${D}${bindir}/runc
}

PACKAGES =+ "${PN}-runc"
# The front (${bindir}/slr, in the default FILES) and the frozen runtime it executes: one
# package, never one without the other.
FILES:${PN} += "${libexecdir}/slruntime/slr"
FILES:${PN}-runc += "${bindir}/runc"

# ctypes opens libseccomp.so.2 by soname at run time.
RDEPENDS:${PN} = "libseccomp"
RDEPENDS:${PN}-runc = "${PN}"
RRECOMMENDS:${PN} = "slruntime-rootfs-config"
# slruntime-compact-runc: /usr/bin/runc -> slr, the virtual-runc of meta-virtualization's
# stacks (see PROVIDES above).  Like runc and crun's runc link, it cannot share an image
# with another /usr/bin/runc.
RPROVIDES:${PN}-runc = "virtual-runc"
RCONFLICTS:${PN}-runc = "runc-opencontainers crun"
