"""CLI fuzzer: every subcommand with missing, extra and malformed arguments (ids with
/, .., very long, not UTF-8), flags of other commands, a bad --root; and concurrent
operations on one id. Same oracle as test_fuzz_config (see fuzzing.py for long runs):
exit 0, or exit 1 with exactly one line on stderr (usage text on stdout for a missing
command); never a hang or a traceback; and consistent state afterwards.
"""

import json
import os
import stat
import subprocess
import tempfile
import uuid

import pytest
from fuzzing import check_answer, fuzz, run_in_subreaper
from helpers import default_config
from hypothesis import example, given
from hypothesis import strategies as st
from slruntime import cli
from test_bad_input import Leftovers

# Commands that do not touch a container: safe with anything. (events without --stats
# and pool create would run until stopped: their runs are fuzzed with a bounded id set.)
COMMANDS = sorted(set(cli.COMMANDS) | {"pool", "nonsense", ""})
FLAGS = sorted({name for command in cli.COMMANDS.values() for option in command.options for name in option.names}
               | {name for option in cli.GLOBAL_OPTIONS for name in option.names} | {"--", "-", "--bogus", "-zz"})
IDS = ("", "a/b", "..", ".", "../x", "/abs", "a" * 255, "a" * 256, "a" * 5000, "\udcff\udcfe", "\u00e9t\u00e9",
       "id\nx", "-", "--help", "ok-id", "a b", "*", "%s%n")
SIGNALS = ("KILL", "SIGTERM", "0", "65", "-1", "SIG_IGN", "sigkill", "99999999999999999999", "")
NUMBERS = ("0", "-1", "1", "18446744073709551616", "1e3", "0x10", "", " 1", "nan")
ROOTS = ("{ws}/state", "{ws}/file", "{ws}/fifo", "{ws}/open", "{ws}/missing/deep", "/proc", "/dev/null",
         "", "relative", "{ws}/" + "r" * 300)

argument = st.one_of(st.sampled_from(IDS), st.sampled_from(FLAGS), st.sampled_from(SIGNALS),
                     st.sampled_from(NUMBERS), st.sampled_from(("{ws}/bundle", "{ws}/fifo", "{ws}/missing")),
                     st.text(st.characters(exclude_characters="\0"), max_size=8))  # argv holds no NUL


@pytest.fixture
def ws():
    """A workspace holding what the arguments name: a state root, a regular file, a FIFO,
    a state root others may write, a bundle whose config.json is a FIFO."""
    top = tempfile.mkdtemp(prefix="slr-fuzz-cli-")
    os.chmod(top, 0o755)
    for name in ("state", "bundle"):
        os.mkdir(os.path.join(top, name))
    os.mkdir(os.path.join(top, "open"))
    os.chmod(os.path.join(top, "open"), 0o777)
    with open(os.path.join(top, "file"), "w") as f:
        f.write("x")
    os.mkfifo(os.path.join(top, "fifo"))
    os.mkfifo(os.path.join(top, "bundle", "config.json"))
    yield top
    subprocess.run(["rm", "-rf", top], check=False)


def _answers_well(result, what):
    if result["code"] == 1 and result["stderr"] == "" and result["stdout"].startswith("usage:"):
        return  # no (sub)command: the usage, as runc prints it
    check_answer(result, what)


def _state_entries(root):
    try:
        return sorted(set(os.listdir(root)) - {"seccomp-cache"})
    except OSError:
        return []


@example(["--root", "{ws}/open", "list"])
@example(["--root", "{ws}/fifo", "state", "x"])
@example(["kill", "\udcff", "KILL"])
@example(["delete", "a" * 5000])
@example(["create", "--bundle", "{ws}/bundle", "x"])
@example(["update", "--memory", "18446744073709551616", "x"])
@example(["exec", "-p", "{ws}/fifo", "x"])
@given(st.one_of(
    st.tuples(st.sampled_from(COMMANDS), st.lists(argument, max_size=5)).map(lambda t: [t[0], *t[1]]),
    st.tuples(st.just("--root"), st.sampled_from(ROOTS), st.sampled_from(COMMANDS),
              st.lists(argument, max_size=3)).map(lambda t: [t[0], t[1], t[2], *t[3]])))
@fuzz(ci_examples=80)
def test_fuzz_cli_arguments(slr_bin, ws, argv):
    argv = [a.replace("{ws}", ws) for a in argv]
    if argv and argv[0] != "--root":
        argv = ["--root", os.path.join(ws, "state"), *argv]
    if "pool" in argv and "create" in argv or "events" in argv and "--stats" not in argv:
        argv.append("no-such-container-" + uuid.uuid4().hex)  # (would otherwise run until stopped)
    results, leaked = run_in_subreaper([[slr_bin, *argv]], timeout=20, env={"HOME": ws}, cwd=ws)
    what = f"slr {argv!r}"
    _answers_well(results[0], what)
    assert leaked == [], f"{what}: processes left: {leaked}"
    assert _state_entries(os.path.join(ws, "state")) == [], what
    assert stat.S_ISFIFO(os.stat(os.path.join(ws, "fifo")).st_mode), what


# --- concurrent operations on one id -------------------------------------------------------

OPERATIONS = ("create", "create", "delete", "delete-force", "kill", "kill-all", "start", "state", "run-detached")


@given(st.lists(st.sampled_from(OPERATIONS), min_size=2, max_size=6))
@fuzz(ci_examples=15)
def test_fuzz_concurrent_operations_on_one_id(slr_bin, ws, busybox_rootfs, operations):
    """All at once on one id: each answers 0 or one line; afterwards `delete --force`
    leaves nothing (no state, cgroup, mount or process), whatever order they ran in."""
    marker = "slrfuzz" + uuid.uuid4().hex[:12]
    bundle = tempfile.mkdtemp(dir=ws)
    config = default_config(["sleep", "100000"], busybox_rootfs)
    config["process"]["env"].append(f"SLR_TEST_MARKER={marker}")
    config["linux"]["cgroupsPath"] = f"/{marker}/c"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    root = os.path.join(ws, "race-" + marker)
    slr = [slr_bin, "--root", root]
    argv = {"create": ["create", "--bundle", bundle, "c"], "delete": ["delete", "c"],
            "delete-force": ["delete", "--force", "c"], "kill": ["kill", "c", "KILL"],
            "kill-all": ["kill", "--all", "c", "TERM"], "start": ["start", "c"], "state": ["state", "c"],
            "run-detached": ["run", "-d", "--bundle", bundle, "c"]}
    leftovers = Leftovers(root, ws, marker, f"/{marker}/c")
    script = " ".join(f"({' '.join(_quote(a) for a in slr + argv[op])} >{root}.out{i} 2>{root}.err{i}; "
                      f"echo $? >{root}.rc{i}) &" for i, op in enumerate(operations)) + " wait"
    results, leaked = run_in_subreaper([["sh", "-c", script], slr + ["delete", "--force", "c"]],
                                       timeout=60, env={"SLR_TEST_MARKER": marker})
    what = f"concurrently {operations}"
    assert results[0]["code"] == 0, what
    for i, op in enumerate(operations):
        with open(f"{root}.rc{i}") as rc, open(f"{root}.err{i}") as err, open(f"{root}.out{i}") as out:
            _answers_well({"code": int(rc.read()), "stderr": err.read(), "stdout": out.read()}, f"{what}: {op}")
    assert results[1]["code"] == 0, f"{what}: delete --force: {results[1]}"
    assert leaked == [], f"{what}: processes left: {leaked}"
    assert leftovers.check("c") == [], what


def _quote(arg):
    return "'" + arg.replace("'", "'\\''") + "'"
