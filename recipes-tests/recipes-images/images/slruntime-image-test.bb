SUMMARY = "slruntime-image with the on-target tests: bundles, ptest, SSH for testimage"
DESCRIPTION = "slruntime-image plus the busybox test bundle, the slruntime Python \
               package (slr-python) and its ptest suite run against the frozen \
               /usr/bin/slr, ptest-runner and a dropbear SSH server for testimage.  Root \
               logs in without a password: for test benches only."
LICENSE = "MIT"

require recipes-core/images/slruntime-image.inc

# slruntime-python: the Python package and python3, which the ptest suite (pytest) needs;
# product images have neither.
IMAGE_FEATURES += "empty-root-password allow-empty-password allow-root-login \
                   ssh-server-dropbear slruntime-python"
IMAGE_INSTALL += "slruntime-test-bundles slruntime-ptest ptest-runner"

inherit testimage slruntime_seccomp_profile

# The busybox bundle gets a seccomp profile of what the image's busybox (bound into the
# bundle with its libraries) can call, generated on the finished rootfs; slr applies it
# as the bundle's image default.  The bundle only ever runs busybox.
SLRUNTIME_PROFILE_BUNDLES = "${datadir}/slr/bundles/busybox"
SLRUNTIME_PROFILE_ARGS = "--entry /bin/busybox"

# The oeqa cases of lib/oeqa/runtime/cases/slruntime.py, after the basic checks.
TEST_SUITES = "ping ssh ptest slruntime"
# runqemu without root (no tap device): user networking with port forwarding.
TEST_RUNQEMUPARAMS = "slirp"
# The ptest suite starts real containers: give it time on TCG.
TEST_QEMUBOOT_TIMEOUT = "1500"

# The root file system is read-only: dropbear keeps its generated host keys on tmpfs.
ROOTFS_POSTPROCESS_COMMAND += "slruntime_test_dropbear_keys"
slruntime_test_dropbear_keys[doc] = "Points dropbear's generated host keys at tmpfs"
slruntime_test_dropbear_keys() {
    if [ -d ${IMAGE_ROOTFS}${sysconfdir}/dropbear ]; then
        echo "DROPBEAR_RSAKEY_DIR=${localstatedir}/volatile/dropbear" >> ${IMAGE_ROOTFS}${sysconfdir}/default/dropbear
    fi
}
