# slruntime_seccomp_profile: generate a seccomp profile for OCI bundles at build time,
# with the native `slr profile` (runtime/slruntime/profile).
#
# The profile allows only the system calls the bundle's programs and libraries can make
# (static analysis of the target binaries; no target code runs on the build host). It is
# written to <bundle>/seccomp.profile.json and named in the bundle's config.json by the
# annotation "org.slruntime.seccomp.profile", which makes slr apply it whenever
# config.json has no linux.seccomp of its own (on top of slr.conf's seccomp-default,
# which it can narrow but not widen).
#
# The analysis sees what the container will see: the bundle's rootfs and its bind mounts.
# Where the class runs decides where bind-mount sources are found:
#
#   - in a recipe that installs self-contained bundles, after do_install, on ${D}:
#
#       inherit slruntime_seccomp_profile
#       SLRUNTIME_PROFILE_BUNDLES = "${datadir}/slr/bundles/myapp"
#
#   - in an image, on the finished root filesystem (a ROOTFS_POSTPROCESS_COMMAND): bundles
#     that bind the image's own programs and libraries (/bin/busybox, /lib) are analysed
#     together with those files of the image:
#
#       inherit slruntime_seccomp_profile
#       SLRUNTIME_PROFILE_BUNDLES = "${datadir}/slr/bundles/busybox"
#
# SLRUNTIME_PROFILE_BUNDLES: bundle directories, as installed paths.
# SLRUNTIME_PROFILE_ARGS: more `slr profile` options, e.g. "--entry /bin/sh" to analyse
# only these programs instead of every executable the container sees.
# The text report of each bundle (allowed/denied counts, which binary needs which call,
# dlopen()ed libraries that were not found) lands in ${SLRUNTIME_PROFILE_REPORTS}.

SLRUNTIME_PROFILE_BUNDLES ??= ""
SLRUNTIME_PROFILE_ARGS ??= ""
SLRUNTIME_PROFILE_REPORTS ?= "${WORKDIR}/seccomp-profile-reports"

# The architectures slr profile analyses, by TARGET_ARCH.
SLRUNTIME_PROFILE_ARCH = "${@ {'x86_64': 'x86_64', 'aarch64': 'aarch64'}.get(d.getVar('TARGET_ARCH'), '')}"

# slr profile and what it imports: capstone (Python bindings with their own libcapstone;
# ELF files are read by slr's own parser) and libseccomp (the system call tables of the
# target architecture).
SLRUNTIME_PROFILE_DEPENDS = "slruntime-native:do_populate_sysroot \
                             python3-capstone-native:do_populate_sysroot \
                             libseccomp-native:do_populate_sysroot"

inherit python3native

# slruntime_seccomp_profile_bundles ROOT HOST_ROOT: profile each bundle installed in ROOT;
# absolute bind-mount sources are looked up in HOST_ROOT.
slruntime_seccomp_profile_bundles[doc] = "Runs the native slr profile on each bundle of SLRUNTIME_PROFILE_BUNDLES"
slruntime_seccomp_profile_bundles() {
    root="$1"
    host_root="$2"
    if [ -z "${SLRUNTIME_PROFILE_BUNDLES}" ]; then
        bbfatal "slruntime_seccomp_profile: SLRUNTIME_PROFILE_BUNDLES is empty: name the bundle directories to profile"
    fi
    if [ -z "${SLRUNTIME_PROFILE_ARCH}" ]; then
        bbfatal "slruntime_seccomp_profile: TARGET_ARCH ${TARGET_ARCH} is not supported (x86_64, aarch64)"
    fi
    mkdir -p "${SLRUNTIME_PROFILE_REPORTS}"
    for bundle in ${SLRUNTIME_PROFILE_BUNDLES}; do
        if [ ! -f "$root$bundle/config.json" ]; then
            bbfatal "slruntime_seccomp_profile: $bundle is not a bundle in $root (no config.json)"
        fi
        report="${SLRUNTIME_PROFILE_REPORTS}/$(echo "$bundle" | sed -e 's#^/##' -e 's#/#_#g').txt"
        # libseccomp is opened by soname through ctypes: point it at the native sysroot.
        LD_LIBRARY_PATH="${STAGING_LIBDIR_NATIVE}" ${PYTHON} -m slruntime.profile \
            --bundle "$root$bundle" --host-root "$host_root" --arch ${SLRUNTIME_PROFILE_ARCH} \
            --install --report "$report" ${SLRUNTIME_PROFILE_ARGS} \
            || bbfatal "slruntime_seccomp_profile: slr profile failed for $bundle"
        bbnote "slruntime_seccomp_profile: $bundle: $(head -n 1 "$report")"
    done
}

do_seccomp_profile() {
    slruntime_seccomp_profile_bundles "${D}" "${D}"
}
do_seccomp_profile[doc] = "Generates a seccomp profile for each bundle in SLRUNTIME_PROFILE_BUNDLES with the native slr profile"
do_seccomp_profile[cleandirs] = "${SLRUNTIME_PROFILE_REPORTS}"
# ${D} belongs to the pseudo database of do_install: keep file ownership consistent.
do_seccomp_profile[fakeroot] = "1"
do_seccomp_profile[depends] += "${SLRUNTIME_PROFILE_DEPENDS}"
addtask seccomp_profile after do_install before do_package

# In an image the bundles are profiled on the finished root filesystem instead.
SLRUNTIME_PROFILE_IN_IMAGE = "${@'1' if bb.data.inherits_class('image', d) else ''}"
do_seccomp_profile[noexec] = "${SLRUNTIME_PROFILE_IN_IMAGE}"
ROOTFS_POSTPROCESS_COMMAND += "${@'slruntime_seccomp_profile_image' if d.getVar('SLRUNTIME_PROFILE_IN_IMAGE') else ''}"
do_rootfs[depends] += "${SLRUNTIME_PROFILE_DEPENDS}"

slruntime_seccomp_profile_image[doc] = "Generates a seccomp profile for each bundle in SLRUNTIME_PROFILE_BUNDLES of the image's root filesystem"
slruntime_seccomp_profile_image() {
    slruntime_seccomp_profile_bundles "${IMAGE_ROOTFS}" "${IMAGE_ROOTFS}"
}
