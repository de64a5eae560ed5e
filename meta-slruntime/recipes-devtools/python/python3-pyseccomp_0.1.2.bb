SUMMARY = "Python interface to libseccomp using ctypes"
DESCRIPTION = "Pure-Python bindings to libseccomp, API compatible with libseccomp's \
               own Python bindings.  Patched to load libseccomp.so.2 by its soname: \
               images have no ldconfig."
HOMEPAGE = "https://github.com/cptpcrd/pyseccomp"
SECTION = "devel/python"
LICENSE = "MIT"
# The sdist ships no license file; its metadata states the license.
LIC_FILES_CHKSUM = "file://PKG-INFO;beginline=6;endline=6;md5=8227180126797a0148f94f483f3e1489"

SRC_URI += "file://0001-Load-libc-and-libseccomp-without-find_library.patch"
SRC_URI[sha256sum] = "0d54efacf71bda4bdfd21233f5444b730cbecf593d602f796e6412a8682258bd"

inherit pypi python_setuptools_build_meta

# ctypes opens libseccomp at import time: no link-time dependency to detect.
RDEPENDS:${PN} = "libseccomp python3-core python3-ctypes"

BBCLASSEXTEND = "native"
