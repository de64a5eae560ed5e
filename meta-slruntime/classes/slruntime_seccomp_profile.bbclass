# slruntime_seccomp_profile: generate a seccomp profile for each OCI bundle a recipe
# installs, at build time, with the native `slr profile` (runtime/slruntime/profile).
#
# The profile allows only the system calls the bundle's programs and libraries can make
# (static analysis of the target binaries in ${D}; no target code runs on the build
# host). It is written to <bundle>/seccomp.profile.json and named in the bundle's
# config.json by the annotation "org.slruntime.seccomp.profile", which makes slr apply
# it whenever config.json has no linux.seccomp of its own.
#
# Usage, in a recipe whose do_install creates bundles (config.json + rootfs) under ${D}:
#
#   inherit slruntime_seccomp_profile
#   SLRUNTIME_PROFILE_BUNDLES = "${datadir}/slruntime/bundles/busybox"
#   # optional: analyse only these programs instead of every executable in the rootfs
#   SLRUNTIME_PROFILE_ARGS = "--entry /bin/sh"
#
# SLRUNTIME_PROFILE_BUNDLES: bundle directories, as installed paths (without ${D}).
# The text report of each bundle (allowed/denied counts, which binary needs which call,
# dlopen()ed libraries that were not found) lands in ${SLRUNTIME_PROFILE_REPORTS}.
#
# Needs native builds of slruntime, pyelftools, capstone (Python bindings) and libseccomp
# (libseccomp supplies the system call tables of the target architecture).

SLRUNTIME_PROFILE_BUNDLES ??= ""
SLRUNTIME_PROFILE_ARGS ??= ""
SLRUNTIME_PROFILE_REPORTS ?= "${WORKDIR}/seccomp-profile-reports"

# The architectures slr profile analyses, by TARGET_ARCH.
SLRUNTIME_PROFILE_ARCH = "${@ {'x86_64': 'x86_64', 'aarch64': 'aarch64'}.get(d.getVar('TARGET_ARCH'), '')}"

inherit python3native

do_seccomp_profile[depends] += "slruntime-native:do_populate_sysroot \
                                python3-pyelftools-native:do_populate_sysroot \
                                capstone-native:do_populate_sysroot \
                                libseccomp-native:do_populate_sysroot"
do_seccomp_profile[doc] = "Generates a seccomp profile for each bundle in SLRUNTIME_PROFILE_BUNDLES with the native slr profile"
do_seccomp_profile[dirs] = "${SLRUNTIME_PROFILE_REPORTS}"
do_seccomp_profile[cleandirs] = "${SLRUNTIME_PROFILE_REPORTS}"

do_seccomp_profile() {
    if [ -z "${SLRUNTIME_PROFILE_BUNDLES}" ]; then
        bbfatal "slruntime_seccomp_profile: SLRUNTIME_PROFILE_BUNDLES is empty: name the bundle directories installed under \${D}"
    fi
    if [ -z "${SLRUNTIME_PROFILE_ARCH}" ]; then
        bbfatal "slruntime_seccomp_profile: TARGET_ARCH ${TARGET_ARCH} is not supported (x86_64, aarch64)"
    fi
    for bundle in ${SLRUNTIME_PROFILE_BUNDLES}; do
        if [ ! -f "${D}${bundle}/config.json" ]; then
            bbfatal "slruntime_seccomp_profile: ${bundle} is not a bundle in \${D} (no config.json)"
        fi
        report="${SLRUNTIME_PROFILE_REPORTS}/$(echo "${bundle}" | sed -e 's#^/##' -e 's#/#_#g').txt"
        # libseccomp is opened by soname through ctypes: point it at the native sysroot.
        LD_LIBRARY_PATH="${STAGING_LIBDIR_NATIVE}" ${PYTHON} -m slruntime.profile \
            --bundle "${D}${bundle}" --arch ${SLRUNTIME_PROFILE_ARCH} --install \
            --report "$report" ${SLRUNTIME_PROFILE_ARGS} \
            || bbfatal "slruntime_seccomp_profile: slr profile failed for ${bundle}"
        bbnote "slruntime_seccomp_profile: ${bundle}: $(head -n 1 "$report")"
    done
}

addtask seccomp_profile after do_install before do_package
