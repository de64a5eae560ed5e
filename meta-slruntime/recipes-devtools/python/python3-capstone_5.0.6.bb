SUMMARY = "Capstone disassembly framework, Python bindings"
DESCRIPTION = "Python bindings of the Capstone disassembler with the C library they \
               load (built from the sources bundled in the sdist).  slr profile \
               disassembles x86_64 and aarch64 code with it to find system calls."
HOMEPAGE = "https://www.capstone-engine.org"
SECTION = "devel/python"
LICENSE = "BSD-3-Clause AND NCSA"
LIC_FILES_CHKSUM = "file://LICENSE.TXT;md5=1cfbff4f40612b0144e498a47c91499c \
                    file://src/LICENSE_LLVM.TXT;md5=71df953c321b5b31ae94316a7fb6a7f3"

SRC_URI[sha256sum] = "b11a87d67751b006b9b44428d59c99512e6d6c89cf7dff8cdd92d9065628b5a0"

PYPI_PACKAGE = "capstone"

# setup.py builds the bundled libcapstone with make.sh (CC and CFLAGS from the
# environment) and installs it inside the Python package, where the bindings load it.
inherit pypi python_setuptools_build_meta

RDEPENDS:${PN} = "python3-core python3-ctypes"

BBCLASSEXTEND = "native"
