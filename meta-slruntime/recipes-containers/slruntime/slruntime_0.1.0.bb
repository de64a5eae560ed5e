SUMMARY = "slruntime: a secure, lightweight OCI container runtime for embedded Linux"
DESCRIPTION = "slr, a runc-compatible OCI runtime written in Python, with seccomp, \
               capabilities, cgroup2 and namespace support and no daemon."

require slruntime.inc

inherit python_setuptools_build_meta

# The standard-library split packages slruntime imports (oe-core's python3-manifest.json):
# core (os, signal, struct, subprocess, select, argparse...), ctypes (libc and libseccomp
# calls), fcntl, io (socket, termios, tempfile), json (config.json and state), shell
# (shlex) and terminal (tty).  libseccomp is opened by soname through ctypes.
RDEPENDS:${PN} = "libseccomp python3-core python3-ctypes python3-fcntl python3-io \
                  python3-json python3-prctl python3-pyseccomp python3-shell \
                  python3-terminal"
# slruntime-native runs `slr profile` at build time (slruntime_seccomp_profile.bbclass),
# which only needs what that class stages: pyelftools, capstone, libseccomp.
RDEPENDS:${PN}:class-native = ""

# The default configuration and seccomp profile come with the image layout.
RRECOMMENDS:${PN} = "slruntime-rootfs-config"
RRECOMMENDS:${PN}:class-native = ""

BBCLASSEXTEND = "native"
