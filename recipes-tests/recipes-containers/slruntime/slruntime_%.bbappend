# The runtime's own pytest suite (runtime/tests) as slruntime-ptest, run on the target
# by ptest-runner.
inherit ptest

FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI += "file://run-ptest"

do_install_ptest() {
    cp -r ${S}/tests ${D}${PTEST_PATH}/
    install -m 0644 ${S}/pyproject.toml ${D}${PTEST_PATH}/
}

# pytest-timeout: pyproject.toml sets a per-test timeout; the automake plugin prints
# the PASS:/FAIL: lines ptest-runner reads; busybox gives the bundles' rootfs;
# slruntime-compact is the runtime under test (run-ptest).
RDEPENDS:${PN}-ptest += "busybox python3-pytest python3-pytest-timeout \
                         python3-unittest-automake-output slruntime-compact \
                         slruntime-test-bundles"
