"""The runtime's own security, device, cgroup and bad-input tests (runtime/tests), run
inside the guest against the image's frozen slr (SLR_BIN=/usr/bin/slr): the target's
configuration (cgroup v2 only, the Debian cloud kernel, busybox, read-only root) is
what the security claims are tested on.  pytest and Python come from the tests
overlay (HWTESTS_OVERLAYS=tests), never from the product root.

Each guest test's outcome is recorded (`record_property`, and results/<target>/
runtime-suite.json, with pytest's whole output in runtime-suite.log); this test
fails when any of them failed or errored.
HWTESTS_SUITE_FILES overrides the test files (space separated, relative to
runtime/tests), HWTESTS_SUITE_SELECT adds a pytest -k expression.

Two choices of the harness, for the tests' own assumptions (they were written for
the development host):
- the tests' files live on a tmpfs of their own, mounted without `nodev`: the
  image's fstab mounts every tmpfs `nodev`, where the device nodes some tests put in
  a container's rootfs could not be opened;
- slr reads no slr.conf (SLR_CONFIG empty), as on the host: with the image's
  `seccomp-default` every container leaves a seccomp cache entry in the state root
  (`@seccomp-cache`), which the tests' "nothing left behind" checks count.
  HWTESTS_SUITE_CONFIG=/etc/slr/slr.conf runs them under the image's configuration.
"""
import json
import os
import re
import shlex

import pytest

from .image.tests_overlay import TESTS_DIR

SUITE_FILES = os.environ.get("HWTESTS_SUITE_FILES", " ".join([
    "test_security.py", "test_audit_escapes.py", "test_cgroups.py", "test_bad_input.py",
    "test_devices.py"])).split()
SELECT = os.environ.get("HWTESTS_SUITE_SELECT", "")
# Seconds the whole in-guest run may take (TCG; the suite is ~200 tests).
SUITE_TIMEOUT = int(os.environ.get("HWTESTS_SUITE_TIMEOUT", "2400"))
SUITE_CONFIG = os.environ.get("HWTESTS_SUITE_CONFIG", "")
# A tmpfs with device nodes allowed, for pytest's temporary directories.
SUITE_TMP = "/run/hwtests/suite-tmp"
# pytest -rA summary lines: "OUTCOME test-id[ - reason]" (ids may hold spaces), and
# "SKIPPED [n] file:line: reason".
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (.+?)(?: - (.*))?$")
SKIPPED = re.compile(r"^SKIPPED \[\d+\] (\S+): (.*)$")


def test_runtime_suite_passes_in_the_guest(guest, overlays, results_dir, record_property):
    tests = overlays.get("tests")
    if tests is None:
        pytest.skip("the tests overlay is not attached (HWTESTS_OVERLAYS=tests)")
    directory = f"{tests.path}/{TESTS_DIR}"
    present = [f for f in SUITE_FILES if guest.status(f"test -f {directory}/{f}")[0] == 0]
    guest.run(f"mkdir -p {SUITE_TMP} && (grep -q ' {SUITE_TMP} ' /proc/mounts ||"
              f" mount -t tmpfs -o mode=0755 suite-tmp {SUITE_TMP})")
    command = (
        f"cd {directory} && SLR_BIN=/usr/bin/slr SLR_CONFIG={shlex.quote(SUITE_CONFIG)}"
        f" PYTHONDONTWRITEBYTECODE=1 COLUMNS=300"
        f" LD_LIBRARY_PATH={tests.library_path}"
        f" {tests.path}/usr/bin/python3 -m pytest -p no:cacheprovider -q -rA"
        f" --basetemp={SUITE_TMP}/pytest"
        f" -o console_output_style=classic -m 'not rootless'"
        + (f" -k {shlex.quote(SELECT)}" if SELECT else "")
        + " " + " ".join(present) + " > /tmp/runtime-suite.log 2>&1; echo exit=$?")
    out = guest.run(command, timeout=SUITE_TIMEOUT)
    status = int(out[-1].split("=")[1])
    log = guest.run("cat /tmp/runtime-suite.log", timeout=300)
    outcomes = {}
    for line in log:
        line = line.strip()
        match = OUTCOME.match(line)
        if match:
            outcomes[match.group(2)] = {"outcome": match.group(1),
                                        "reason": match.group(3) or ""}
        elif match := SKIPPED.match(line):
            outcomes[match.group(1)] = {"outcome": "SKIPPED", "reason": match.group(2)}
    for test, result in outcomes.items():
        record_property(test, result["outcome"])
    with open(os.path.join(results_dir, "runtime-suite.log"), "w") as f:
        f.write("\n".join(log) + "\n")
    path = os.path.join(results_dir, "runtime-suite.json")
    with open(path, "w") as f:
        json.dump({"files": present, "select": SELECT, "slr_config": SUITE_CONFIG,
                   "pytest_exit": status,
                   "summary": log[-1] if log else "", "tests": outcomes}, f, indent=2)
        f.write("\n")
    print(f"\nruntime suite in the guest ({', '.join(present)}): "
          f"{log[-1] if log else 'no output'}\nresults: {path}")
    failed = {t: r["reason"] for t, r in outcomes.items() if r["outcome"] in ("FAILED", "ERROR")}
    assert not failed, f"failed in the guest: {json.dumps(failed, indent=1)}"
    # pytest itself must have run the tests (exit 0; 5 would be "nothing collected").
    assert status == 0 and outcomes, "\n".join(log[-30:])
