"""What the fuzz tests (test_fuzz_config.py, test_fuzz_cli.py) share: how many examples
to run, the mutations of a JSON document, and the oracle.

Runs are reproducible: hypothesis derandomized (its seed derived from each test), no
example database. On demand:

    SLR_FUZZ_EXAMPLES=10000 SLR_FUZZ_SEED=7 .venv/bin/python -m pytest runtime/tests/test_fuzz_*.py

SLR_FUZZ_EXAMPLES sets the examples of every fuzz test (default: the small CI number each
test names); SLR_FUZZ_SEED makes a run random again from that seed (a long campaign runs
several seeds). A failing shape is printed by hypothesis; add it to the test as an
@example so it stays a regression case.
"""

import json
import os
import re
import subprocess
import sys

from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = int(os.environ.get("SLR_FUZZ_EXAMPLES", "0"))
SEED = os.environ.get("SLR_FUZZ_SEED")


def fuzz(ci_examples):
    """The decorators of a fuzz test: `ci_examples` in CI, SLR_FUZZ_EXAMPLES on demand."""
    configured = settings(max_examples=EXAMPLES or ci_examples, deadline=None, database=None,
                          derandomize=SEED is None, print_blob=True,
                          phases=(Phase.explicit, Phase.generate),  # shrinking reruns containers for minutes
                          suppress_health_check=list(HealthCheck))

    def decorate(test):
        test = configured(test)
        return seed(int(SEED))(test) if SEED is not None else test

    return decorate


# --- values at and past every limit -------------------------------------------------------

# Every kernel or JSON limit the runtime meets: int/uint 32 and 64, NGROUPS_MAX, the umask's
# bits, PATH_MAX, NAME_MAX, oom_score_adj, id -1.
LIMIT_NUMBERS = (-(1 << 64), -(1 << 63) - 1, -(1 << 63), -(1 << 31) - 1, -(1 << 31), -1001, -1000, -1, 0, 1,
                 255, 256, 511, 512, 999, 1000, 1001, 4095, 4096, 65535, 65536, 65537, (1 << 31) - 1, 1 << 31,
                 (1 << 32) - 2, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64, 1 << 100,
                 0.5, -0.0, 1e308, float("inf"), float("nan"))

# Paths: relative, escaping, through /proc magic links, special files, too long, deep,
# not UTF-8-clean, with NUL or newline. {bundle} is the example's bundle directory,
# which holds a FIFO, a symlink to /, a symlink loop and a regular file.
PATH_STRINGS = ("", ".", "..", "../..", "/..", "/../../..", "/proc", "/proc/self/exe", "/proc/1/root",
                "/proc/self/fd/0", "/proc/self/ns/net", "/proc/kmsg", "/dev/zero", "/dev/null", "/dev/ptmx",
                "/dev/tty", "/sys/kernel", "/", "//", "/tmp/../..", "/etc/passwd", "/bin/true", "/nonexistent",
                "{bundle}/fifo", "{bundle}/to-root", "{bundle}/loop", "{bundle}/file", "{bundle}/fifo/x",
                "fifo", "to-root", "loop", "rootfs", "rootfs/..", "/" + "a" * 255, "/" + "a" * 256,
                "/" + "a" * 4094, "/" + "a" * 4095, "/" + "a/" * 1100, "/" + "../" * 1100, "/tmp/\u00e9",
                "/tmp/\ud800", "/tmp/a\nb", "/tmp/a\0b", "a" * 70, "-", "--help")

KEYS = ("args", "env", "cwd", "user", "uid", "gid", "umask", "additionalGids", "terminal", "path", "type",
        "source", "destination", "options", "limit", "rlimits", "capabilities", "bounding", "effective",
        "noNewPrivileges", "oomScoreAdj", "namespaces", "uidMappings", "gidMappings", "resources", "memory",
        "cpu", "pids", "devices", "seccomp", "defaultAction", "syscalls", "names", "action", "hooks",
        "maskedPaths", "readonlyPaths", "consoleSize", "height", "width", "wait", "x", "")

scalars = st.one_of(
    st.none(), st.booleans(), st.sampled_from(LIMIT_NUMBERS), st.integers(), st.floats(),
    st.sampled_from(PATH_STRINGS), st.text(max_size=12), st.sampled_from(KEYS))

values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=8)


# --- mutations of a decoded document ------------------------------------------------------

def json_paths(node, path=()):
    """Every property and array item of a decoded JSON document, as key tuples."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield path + (key,)
        yield from json_paths(value, path + (key,))


def mutations(document, count=3):
    """Strategy: a list of (operation, path, argument) to apply with `mutate`."""
    paths = sorted(set(json_paths(document)) | {()}, key=repr)
    operation = st.one_of(
        st.tuples(st.just("set"), st.sampled_from(paths), values),
        st.tuples(st.just("add"), st.sampled_from(paths), st.tuples(st.sampled_from(KEYS), values)),
        st.tuples(st.just("delete"), st.sampled_from(paths), st.none()),
        st.tuples(st.just("repeat"), st.sampled_from(paths), st.sampled_from((2, 3, 1000, 70000))),
        st.tuples(st.just("nest"), st.sampled_from(paths), st.sampled_from((1, 2, 100, 1100, 100000))),
        st.tuples(st.just("type"), st.sampled_from(paths), st.sampled_from(("str", "list", "dict", "int"))))
    return st.lists(operation, min_size=1, max_size=count)


def _walk(document, path):
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    return parent


class Deep:
    """`value` inside `depth` arrays: written as text by `dumps` (json.dumps recurses)."""

    def __init__(self, value, depth):
        self.value = value
        self.depth = depth


def dumps(document):
    """json.dumps, with Deep values written without recursion (in one pass: a repeated
    Deep value may occur 70,000 times)."""
    deep = []

    def placeholder(value):
        if not isinstance(value, Deep):
            raise TypeError(type(value))
        deep.append(value)
        return f"\0deep{len(deep) - 1}\0"

    text = json.dumps(document, allow_nan=True, default=placeholder)
    written = {}

    def expand(match):
        value = deep[int(match.group(1))]
        if id(value) not in written:
            written[id(value)] = "[" * value.depth + dumps(value.value) + "]" * value.depth
        return written[id(value)]

    return re.sub(r'"\\u0000deep(\d+)\\u0000"', expand, text)


MAX_GROWTH = 4 << 20  # bytes one repeat may add to a document


def mutate(document, operations):
    """Apply operations to a deep copy of `document`; an operation whose path a previous
    one removed is skipped."""
    doc = json.loads(json.dumps(document))
    for op, path, arg in operations:
        try:
            if not path:
                doc = _root_mutation(doc, op, arg)
                continue
            parent, key = _walk(doc, path), path[-1]
            current = parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, (dict, list)):
            continue  # a string, after a previous operation made it one
        if op == "set":
            parent[key] = arg
        elif op == "add":
            if isinstance(current, dict):
                current[arg[0]] = arg[1]
            elif isinstance(current, list):
                current.append(arg[1])
            else:
                parent[key] = arg[1]
        elif op == "delete":
            del parent[key]
        elif op == "repeat":  # duplicated entries: the same namespace, mount, rlimit... N times
            repeated = current[-1:] if isinstance(current, list) else [current]
            if len(dumps(repeated)) * arg > MAX_GROWTH:
                continue  # repeats of repeats: gigabytes (the OOM killer took a campaign's pytest)
            parent[key] = current + repeated * (arg - 1) if isinstance(current, list) else repeated * arg
        elif op == "nest":
            parent[key] = Deep(current, arg)
        elif op == "type":
            parent[key] = {"str": str(current), "list": [current], "dict": {"x": current},
                           "int": len(str(current))}[arg]
    return doc


def _root_mutation(doc, op, arg):
    if op == "set":
        return arg
    if op == "nest":
        return Deep(doc, arg)
    if op == "type":
        return [doc] if arg == "list" else doc
    return doc


# Whole-document encodings: what a file may hold besides one UTF-8 JSON object.
ENCODINGS = ("utf-8", "bom", "utf-16", "latin-1-byte", "truncated", "trailing-garbage", "duplicate-keys",
             "nan", "empty", "huge-string")


def encode(document, how):
    text = dumps(document)
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if how == "utf-16":
        return text.encode("utf-16")
    if how == "latin-1-byte":
        return text.replace('"', '"\xff', 1).encode("latin-1", errors="replace")
    if how == "truncated":
        return text[:len(text) // 2].encode()
    if how == "trailing-garbage":
        return text.encode() + b" }{"
    if how == "duplicate-keys" and text.startswith("{") and len(text) > 2:
        first_key = text[1:].split(":", 1)[0]
        return ("{" + first_key + ": 12345, " + first_key + ": [], " + text[1:]).encode()
    if how == "nan":
        return text.replace(": ", ": NaN, \"_\": ", 1).encode()
    if how == "empty":
        return b""
    if how == "huge-string":
        return text.replace(": ", ': "' + "x" * (17 << 20) + '", "_": ', 1).encode()
    return text.encode()


# --- the oracle ----------------------------------------------------------------------------

BAD_WORDS = ("Traceback", "internal error", "Error(", "Exception")


def run_in_subreaper(commands, timeout=30, env=None, cwd=None):
    """Run argv lists one after the other in a private subreaper (subreaper.py);
    -> ([{"code", "stdout", "stderr"}], [command lines of leaked processes])."""
    request = json.dumps({"commands": commands, "timeout": timeout, "env": env or {}, "cwd": cwd})
    done = subprocess.run([sys.executable, os.path.join(HERE, "subreaper.py"), request],
                          capture_output=True, text=True, timeout=timeout * len(commands) + 60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return report["results"], report["leaked"]


def check_answer(result, what, other_codes=()):
    """Exit 0, or one of `other_codes` (the container's own), or exit 1 with exactly one
    line on stderr; never a hang, a traceback or an internal error."""
    code, err = result["code"], result["stderr"]
    assert code is not None, f"{what}: hung (killed after the timeout); stderr: {err[-500:]!r}"
    for word in BAD_WORDS:
        assert word not in err, f"{what}: exit {code}, stderr: {err[-2000:]!r}"
    if code == 1:
        assert err.count("\n") == 1 and err.endswith("\n") and err.startswith("slr: "), \
            f"{what}: exit 1 without exactly one line on stderr: {err[-2000:]!r}"
    else:
        assert code == 0 or code in other_codes, f"{what}: exit {code}, stderr: {err[-2000:]!r}"
