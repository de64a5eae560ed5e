"""oelint-adv on every recipe, append and class, with the suppressions of
tools/yocto/oelint-suppressions (each with its reason)."""
import os
import subprocess
import sys

from layer_paths import REPO, layer_files, read

SUPPRESSIONS = os.path.join(REPO, "tools", "yocto", "oelint-suppressions")


def suppressed_rules():
    rules = []
    for line in read(SUPPRESSIONS).splitlines():
        rule, _, reason = line.partition("#")
        if rule.strip():
            assert reason.strip(), f"oelint-suppressions: {rule.strip()} has no reason"
            rules.append(rule.strip())
    return rules


def test_recipes_appends_and_classes_are_oelint_clean():
    files = layer_files(".bb", ".bbappend", ".bbclass")
    assert files
    command = [os.path.join(os.path.dirname(sys.executable), "oelint-adv"), "--quiet"]
    for rule in suppressed_rules():
        command += ["--suppress", rule]
    result = subprocess.run(command + files, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr
