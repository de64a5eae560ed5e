"""A property-based fuzzer of `slr profile` (issue 16): images mutated in their ELF
headers, program headers, section headers, dynamic sections and string tables, their
files replaced by links, FIFOs and devices, directory trees nested thousands deep,
names that are not UTF-8, loader configuration and config.json gone wrong.

The oracle, for every example: exit 0 with a valid profile, or exit 1 with exactly one
line on stderr; never a traceback, a hang (TIMEOUT) or unbounded memory (the run's
address space is limited); nothing written outside the bundle's own files (a build-host
file the image links to stays as it was) and no temporary file left behind.

Each example runs `slr profile`'s main() in a forked child of this process (the modules
are loaded once: hundreds of examples a minute instead of tens). CI runs a bounded,
derandomized set; a long campaign: see runtime/tests/profile/README.md.
"""

import io
import json
import os
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback

import pytest
from hypothesis import HealthCheck, example, given, reject, seed, settings
from hypothesis import strategies as st

import hostile

from slruntime.profile import cli  # noqa: E402  (loaded before forking, with capstone)
from slruntime.profile import analysis  # noqa: E402,F401

EXAMPLES = int(os.environ.get("SLR_FUZZ_EXAMPLES", "60"))
# A campaign's record: one line per example run (exit code, seconds, command, mutations).
LOG = os.environ.get("SLR_FUZZ_LOG")
SEED = int(os.environ.get("SLR_FUZZ_SEED", "20261206"))
# CI: the same examples on every run. A campaign (SLR_FUZZ_EXAMPLES=10000) draws them from SEED.
settings.register_profile("images", max_examples=EXAMPLES, derandomize="SLR_FUZZ_SEED" not in os.environ,
                          deadline=None, database=None, print_blob=True,
                          suppress_health_check=list(HealthCheck))
TIMEOUT = 30
# Address space of one forked analysis beyond what this process already has.
EXTRA_MEMORY = 320 << 20

PROGRAMS = ["static", "dynamic", "dynamic-bare", "library", "library-bare"]
# Paths of the image (rootfs-relative) and of the bundle a special file may replace.
IMAGE_PATHS = [hostile.IMAGE_FILES[name] for name in PROGRAMS] + [
    "etc/ld.so.conf", "etc/ld.so.conf.d/x.conf", "etc/ld-musl-x86_64.path", "lib/ld-tiny.so",
    "usr/lib/app.py", "lib", "bin", "etc"]
BUNDLE_PATHS = ["config.json", "seccomp.profile.json", "report.json", "rootfs"]
SPECIALS = ["fifo", "null device", "zero device", "link to victim", "link loop", "link to /",
            "link up", "dangling link", "directory", "empty file", "socket"]

BOUNDARY = [0, 1, 2, 3, 7, 8, 16, 24, 56, 64, 0x7F, 0xFF, 0x100, 0xFFF, 0x1000, 0xFF00, 0xFFFF, 0x10000,
            0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, (1 << 63) - 1, 1 << 63, (1 << 64) - 8, (1 << 64) - 1]
values = st.one_of(st.sampled_from(BOUNDARY), st.integers(0, (1 << 64) - 1))

# (offset, width) of ELF64 header fields, program header and section header fields.
HEADER_FIELDS = {"class": (4, 1), "data": (5, 1), "type": (16, 2), "machine": (18, 2), "entry": (24, 8),
                 "phoff": (32, 8), "shoff": (40, 8), "phentsize": (54, 2), "phnum": (56, 2),
                 "shentsize": (58, 2), "shnum": (60, 2), "shstrndx": (62, 2)}
PROGRAM_HEADER_FIELDS = {"type": (0, 4), "flags": (4, 4), "offset": (8, 8), "vaddr": (16, 8),
                         "filesz": (32, 8), "memsz": (40, 8)}
SECTION_HEADER_FIELDS = {"name": (0, 4), "type": (4, 4), "flags": (8, 8), "addr": (16, 8), "offset": (24, 8),
                         "size": (32, 8), "link": (40, 4), "info": (44, 4), "entsize": (56, 8)}
INTERESTING_TYPES = [1, 2, 3, 4, 6, 8, 9, 11, 19, 0x6474E551, 0x6FFFFFF6]   # PT_/SHT_ values
DYNAMIC_TAGS = [0, 1, 5, 12, 13, 14, 15, 29, 0x6FFFFFFF, -1]

names = st.binary(min_size=1, max_size=40).filter(lambda b: b"\x00" not in b and b"/" not in b
                                                  and b not in (b".", b".."))
paths = st.one_of(st.sampled_from([b"/lib/libtiny.so", b"/lib/ld-tiny.so", b"/dev/zero", b"/proc/self/mem",
                                   b"../../../../../../victim", b"/etc/ld.so.conf", b"/", b"/lib/",
                                   b"\xff\xfe/lib", b"lib\nname.so", b"$ORIGIN/../lib", b"/lib/" + b"x" * 300]),
                  st.binary(max_size=60).filter(lambda b: b"\x00" not in b))

mutation = st.one_of(
    st.tuples(st.just("header"), st.sampled_from(PROGRAMS), st.sampled_from(sorted(HEADER_FIELDS)), values),
    st.tuples(st.just("program header"), st.sampled_from(PROGRAMS), st.integers(0, 12),
              st.sampled_from(sorted(PROGRAM_HEADER_FIELDS)), st.one_of(values, st.sampled_from(INTERESTING_TYPES))),
    st.tuples(st.just("section header"), st.sampled_from(PROGRAMS), st.integers(0, 40),
              st.sampled_from(sorted(SECTION_HEADER_FIELDS)), st.one_of(values, st.sampled_from(INTERESTING_TYPES))),
    st.tuples(st.just("dynamic"), st.sampled_from(PROGRAMS), st.integers(0, 20),
              st.sampled_from(DYNAMIC_TAGS), values),
    st.tuples(st.just("dynamic string"), st.sampled_from(PROGRAMS), st.integers(0, 60), paths),
    st.tuples(st.just("interp"), paths),
    st.tuples(st.just("bytes"), st.sampled_from(PROGRAMS), st.integers(0, 16 << 10), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("truncate"), st.sampled_from(PROGRAMS),
              st.one_of(st.integers(0, 16 << 10), st.sampled_from([1 << 30, (512 << 20) + 1]))),
    st.tuples(st.just("special"), st.sampled_from(IMAGE_PATHS), st.sampled_from(SPECIALS)),
    st.tuples(st.just("bundle special"), st.sampled_from(BUNDLE_PATHS), st.sampled_from(SPECIALS)),
    st.tuples(st.just("deep"), st.integers(1, 1500), st.booleans()),
    st.tuples(st.just("name"), st.one_of(names, st.sampled_from([b"..x", b"...", b"-", b"\n", b" "]))),
    st.tuples(st.just("ld.so.conf.d"), st.integers(1, 12)),
    st.tuples(st.just("ld.so.conf"), st.lists(st.one_of(st.sampled_from(
        ["include /etc/ld.so.conf", "include ld.so.conf.d/*.conf", "/lib", "/..", "include /dev/*",
         "include /etc/ld.so.conf.d/../../etc/ld.so.conf", "/lib/../../../../"]), st.text(max_size=30)), max_size=5)),
    st.tuples(st.just("config"), st.sampled_from(["root.path", "bind source", "args", "env", "mounts", "raw", "root",
                                                      "process", "options", "annotations"]),
              st.one_of(paths.map(lambda b: b.decode(errors="surrogateescape")), st.integers(), st.none(),
                        st.lists(st.text(max_size=10), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                     max_size=2))),
    st.tuples(st.just("python"), st.sampled_from(["import posix\n", "(" * 300 + ")" * 300, "\xff", "x = 1\n" * 1000,
                                                  "def f(:\n"])),
)
# Bundles are profiled as at build time, with --host-root at the image they live in (with
# the default, /, a rootfs or bind source linked to / is the whole build host: slow, not wrong).
commands = st.sampled_from(["rootfs", "rootfs entry", "bundle", "bundle install", "bundle report json",
                            "bundle output"])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("fuzz-images"))
    os.mkdir(os.path.join(base, "programs"))
    return base, hostile.build_programs(os.path.join(base, "programs"))


def _layout(data):
    """Offsets of the parts mutations aim at, from an unmutated program."""
    (_, _, _, _, _, phoff, shoff, _, _, _, phnum, _, shnum, shstrndx) = struct.unpack_from("<16sHHIQQQIHHHHHH", data)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + 64 * i) for i in range(shnum)]
    dynamic = next((s for s in sections if s[1] == 6), None)
    dynstr = sections[dynamic[6]] if dynamic else None
    return {"phoff": phoff, "phnum": phnum, "shoff": shoff, "shnum": shnum,
            "dynamic": (dynamic[4], dynamic[5] // 16) if dynamic else None,
            "dynstr": (dynstr[4], dynstr[5]) if dynstr else None}


def _confined(path, top):
    """`path`, if writing it stays in the example's directory `top`: the mutations plant
    links (to /, upwards), and the harness must never write or remove through them."""
    parent = os.path.realpath(os.path.dirname(path))
    if parent != top and not parent.startswith(top + "/"):
        raise OSError(f"{path} leads outside the example")
    return path


def _poke(path, offset, width, value):
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write((value % (1 << (8 * width))).to_bytes(width, "little"))


def _make_special(path, kind, victim):
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            hostile.remove_tree(path)
        else:
            os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind in ("null device", "zero device"):
        os.mknod(path, 0o20666, os.makedev(1, 3 if kind == "null device" else 5))
    elif kind == "link to victim":
        os.symlink(victim, path)
    elif kind == "link loop":
        os.symlink(os.path.basename(path), path)
    elif kind == "link to /":
        os.symlink("/", path)
    elif kind == "link up":
        os.symlink("../../../../../../../..", path)
    elif kind == "dangling link":
        os.symlink("/no/such/file", path)
    elif kind == "directory":
        os.mkdir(path)
    elif kind == "empty file":
        open(path, "w").close()
    elif kind == "socket":
        import socket

        with socket.socket(socket.AF_UNIX) as listener:
            if len(path.encode()) < 100:
                listener.bind(path)


def _apply(mutation, rootfs, bundle, layouts, victim, config, top):
    kind = mutation[0]
    program = lambda name: _confined(os.path.join(rootfs, hostile.IMAGE_FILES[name]), top)  # noqa: E731
    _confined(rootfs + "/x", top)
    if kind in ("header", "program header", "section header", "dynamic", "dynamic string", "bytes", "truncate"):
        path = program(mutation[1])
        if not os.path.isfile(path) or os.path.islink(path):
            return
        layout = layouts[mutation[1]]
    if kind == "header":
        offset, width = HEADER_FIELDS[mutation[2]]
        _poke(path, offset, width, mutation[3])
    elif kind == "program header":
        offset, width = PROGRAM_HEADER_FIELDS[mutation[3]]
        _poke(path, layout["phoff"] + 56 * (mutation[2] % max(layout["phnum"], 1)) + offset, width, mutation[4])
    elif kind == "section header":
        offset, width = SECTION_HEADER_FIELDS[mutation[3]]
        _poke(path, layout["shoff"] + 64 * (mutation[2] % max(layout["shnum"], 1)) + offset, width, mutation[4])
    elif kind == "dynamic" and layout["dynamic"]:
        start, count = layout["dynamic"]
        entry = start + 16 * (mutation[2] % count)
        _poke(path, entry, 8, mutation[3])
        _poke(path, entry + 8, 8, mutation[4])
    elif kind == "dynamic string" and layout["dynstr"]:
        start, size = layout["dynstr"]
        text = mutation[3][:max(size - 1, 0)]
        offset = start + mutation[2] % max(size - len(text), 1)
        with open(path, "r+b") as stream:
            stream.seek(offset)
            stream.write(text)
    elif kind == "interp":
        for name in ("dynamic", "dynamic-bare"):
            path = program(name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as stream:
                    data = stream.read()
                with open(path, "wb") as stream:
                    stream.write(hostile.set_interp(data, mutation[1][:len(hostile.INTERP_PLACEHOLDER)]))
    elif kind == "bytes":
        with open(path, "r+b") as stream:
            stream.seek(min(mutation[2], os.path.getsize(path)))
            stream.write(mutation[3])
    elif kind == "truncate":
        os.truncate(path, mutation[2])
    elif kind == "special":
        _make_special(_confined(os.path.join(rootfs, mutation[1]), top), mutation[2], victim)
    elif kind == "bundle special":
        _make_special(_confined(os.path.join(bundle, mutation[1]), top), mutation[2], victim)
    elif kind == "deep" and os.path.isdir(rootfs) and not os.path.islink(rootfs):
        deepest = hostile.make_deep_tree(os.path.join(rootfs, "deep"), mutation[1]) \
            if not os.path.lexists(os.path.join(rootfs, "deep")) else None
        static = program("static")
        if deepest and mutation[2] and os.path.isfile(static) and not os.path.islink(static):
            with open(static, "rb") as stream:
                data = stream.read()
            fd = os.open(deepest, os.O_RDONLY | os.O_DIRECTORY) if len(deepest) < 4000 else None
            if fd is not None:
                try:
                    out = os.open("prog", os.O_WRONLY | os.O_CREAT, 0o755, dir_fd=fd)
                    os.write(out, data)
                    os.close(out)
                finally:
                    os.close(fd)
    elif kind == "name" and os.path.isdir(os.path.join(rootfs, "bin")) and os.path.isfile(program("static")) \
            and not os.path.islink(program("static")):
        with open(program("static"), "rb") as stream:
            data = stream.read()
        target = os.fsencode(_confined(os.path.join(rootfs, "bin", os.fsdecode(mutation[1])), top))
        if not os.path.lexists(target):
            with open(target, "wb") as stream:
                stream.write(data)
            os.chmod(target, 0o755)
    elif kind == "ld.so.conf" and os.path.isdir(os.path.join(rootfs, "etc")) is not None:
        conf = _confined(os.path.join(rootfs, "etc", "ld.so.conf"), top)
        if not os.path.lexists(conf) and os.path.isdir(rootfs) and not os.path.islink(rootfs):
            os.makedirs(os.path.dirname(conf), exist_ok=True)
            with open(conf, "w", errors="surrogateescape") as stream:
                stream.write("\n".join(mutation[1]) + "\n")
    elif kind == "config":
        field, value = mutation[1], mutation[2]
        for part in ("root", "process"):        # replaced by an earlier mutation
            if field != part and not isinstance(config.get(part), dict):
                config[part] = {}
        if field == "root.path":
            config["root"]["path"] = value
        elif field == "bind source":
            config["mounts"] = config["mounts"] if isinstance(config["mounts"], list) else []
            config["mounts"].append({"destination": "/mnt", "type": "bind", "source": value, "options": ["rbind"]})
        elif field == "args":
            config["process"]["args"] = value if isinstance(value, list) else [value]
        elif field == "env":
            config["process"]["env"] = value if isinstance(value, list) else [value]
        elif field == "mounts":
            config["mounts"] = value
        elif field in ("root", "process", "annotations"):
            config[field] = value
        elif field == "options":
            config["mounts"] = config["mounts"] if isinstance(config["mounts"], list) else []
            config["mounts"].append({"destination": "/lib", "type": "bind", "source": "rootfs/lib", "options": value})
        else:
            config["raw"] = value
    elif kind == "ld.so.conf.d" and os.path.isdir(rootfs) and not os.path.islink(rootfs):
        directory = _confined(os.path.join(rootfs, "etc", "ld.so.conf.d"), top)
        _confined(os.path.join(directory, "x"), top)
        if not os.path.lexists(directory) and not os.path.lexists(os.path.join(rootfs, "etc", "ld.so.conf")):
            os.makedirs(directory)
            with open(os.path.join(rootfs, "etc", "ld.so.conf"), "w") as stream:
                stream.write("include /etc/ld.so.conf.d/*.conf\n")
            for index in range(mutation[1]):          # each includes all: a fan-out
                with open(os.path.join(directory, f"{index}.conf"), "w") as stream:
                    stream.write(f"/lib{index}\ninclude *.conf\n")
    elif kind == "python" and os.path.isdir(rootfs) and not os.path.islink(rootfs):
        app = _confined(os.path.join(rootfs, "usr/lib/app.py"), top)
        if not os.path.lexists(app):
            os.makedirs(os.path.dirname(app), exist_ok=True)
            with open(app, "w", errors="surrogateescape") as stream:
                stream.write(mutation[1])


def _config_bytes(config):
    raw = config.pop("raw", None)
    if raw is None:
        return json.dumps(config).encode(errors="surrogateescape")
    if isinstance(raw, int):
        return b"[" * (abs(raw) % 200000) + b"]" * (abs(raw) % 200000)     # deep nesting
    if isinstance(raw, str):
        return raw.encode(errors="surrogateescape")
    return json.dumps(raw).encode()


def _run_forked(args, out_path, err_path):
    """main(args) of `slr profile` in a child with limits: (exit status, timed out)."""
    with open("/proc/self/statm") as stream:
        address_space = int(stream.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    pid = os.fork()
    if pid == 0:                                      # the child: never returns
        code = 70
        try:
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, 1)
            os.dup2(err, 2)
            # As the interpreter sets them up (pytest has its own in their place).
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                          errors="backslashreplace", line_buffering=True)
            os.setsid()
            resource.setrlimit(resource.RLIMIT_AS, (address_space + EXTRA_MEMORY,) * 2)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            try:
                code = cli.main(args)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 2
            except BaseException:                    # what the oracle is looking for
                traceback.print_exc()
                code = 70
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, True
        time.sleep(0.005)


def _fingerprint(directory):
    """What the victim's directory holds, to see that nothing there changed."""
    return sorted((name, os.lstat(os.path.join(directory, name)).st_mtime_ns,
                   open(os.path.join(directory, name), "rb").read() if os.path.isfile(os.path.join(directory, name))
                   else None) for name in os.listdir(directory))


# Shapes found by campaigns, kept as regression examples (each ended in a traceback or a hang).
@settings(settings.get_profile("images"))
@seed(SEED)
@given(mutations=st.lists(mutation, max_size=4), command=commands)
@example(mutations=[("interp", b"/lib/ld-\xff.so")], command="rootfs")
@example(mutations=[("special", "lib/libtiny.so", "fifo")], command="rootfs entry")
@example(mutations=[("special", "etc/ld-musl-x86_64.path", "fifo")], command="bundle")
@example(mutations=[("bundle special", "seccomp.profile.json", "fifo")], command="bundle install")
@example(mutations=[("bundle special", "config.json", "zero device")], command="bundle")
@example(mutations=[("truncate", "static", (512 << 20) + 1)], command="rootfs entry")
@example(mutations=[("deep", 1200, True)], command="rootfs")
@example(mutations=[("config", "bind source", "../../../../../.."), ("config", "root.path", "/")],
         command="bundle")
@example(mutations=[("config", "raw", 100000)], command="bundle")
@example(mutations=[("section header", "dynamic", 5, "entsize", 0)], command="rootfs entry")
@example(mutations=[("header", "static", "shnum", 0)], command="rootfs entry")
@example(mutations=[("name", b"st\xe9\ntic")], command="rootfs")
@example(mutations=[("config", "mounts", 1)], command="bundle")        # campaign 1: TypeError
@example(mutations=[("ld.so.conf.d", 10)], command="rootfs")            # review: 10^8 includes
@example(mutations=[("name", b"..x")], command="rootfs")                 # review: "outside the rootfs"
@example(mutations=[("ld.so.conf", ["\x00"])], command="rootfs")       # campaign 4: ValueError (NUL)
@example(mutations=[("config", "env", ["PATH=/b\x00in"])], command="bundle")
@example(mutations=[("bundle special", "rootfs", "link up")], command="bundle")  # campaign 12
def test_profile_of_a_mutated_image(workspace, mutations, command):
    base, programs = workspace
    work = tempfile.mkdtemp(dir=base, prefix="example-")
    victim_dir = os.path.join(work, "host")
    os.mkdir(victim_dir)
    victim = os.path.join(victim_dir, "victim")
    with open(victim, "wb") as stream:
        stream.write(b"a file of the build host\n")
    image = os.path.join(work, "image")           # --host-root: the bundle lives inside it
    bundle = os.path.join(image, "srv", "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    try:
        os.makedirs(os.path.join(bundle))
        hostile.make_rootfs(rootfs, programs, interp=b"/lib/ld-tiny.so")
        layouts = {}
        for name in PROGRAMS:
            with open(os.path.join(rootfs, hostile.IMAGE_FILES[name]), "rb") as stream:
                layouts[name] = _layout(stream.read())
        config = {"ociVersion": "1.2.0", "root": {"path": "rootfs"},
                  "process": {"args": ["/bin/dynamic"], "env": ["PATH=/bin"], "cwd": "/"}, "mounts": []}
        for item in mutations:
            try:
                _apply(item, rootfs, bundle, layouts, victim, config, os.path.realpath(work))
            except OSError:
                pass                # not applicable to what earlier mutations made (a file under a FIFO)
        config_path = os.path.join(bundle, "config.json")
        if not os.path.lexists(config_path):
            with open(config_path, "wb") as stream:
                stream.write(_config_bytes(config))
        before = _fingerprint(victim_dir)

        out, err = os.path.join(work, "stdout"), os.path.join(work, "stderr")
        output = None
        if command.startswith("rootfs"):
            top = os.path.realpath(work)
            if not os.path.realpath(rootfs).startswith(top + "/"):
                # --rootfs is the operator's own argument, followed like any command-line
                # path: a rootfs turned into a link out of the example names a tree of this
                # machine (a long, correct analysis). The bundle commands confine it.
                reject()
            args = ["--rootfs", rootfs]
            if command == "rootfs entry":
                args += ["--entry", "/bin/dynamic", "--entry", "/bin/static"]
            args += ["--report", "-"] if command == "rootfs" else []
        else:
            args = ["--bundle", bundle, "--host-root", image]
            output = os.path.join(bundle, "seccomp.profile.json")
            if command == "bundle install":
                args.append("--install")
            elif command == "bundle report json":
                args += ["--report", os.path.join(bundle, "report.json")]
            elif command == "bundle output":
                output = os.path.join(bundle, "out", "p.json")
                os.makedirs(os.path.dirname(output), exist_ok=True)
                args += ["--output", output]
        started = time.monotonic()
        status, timed_out = _run_forked(args, out, err)
        if LOG:
            with open(LOG, "a") as stream:
                outcome = "hang" if timed_out else os.waitstatus_to_exitcode(status)
                stream.write(f"{outcome}\t{time.monotonic() - started:.2f}\t{command}\t{mutations!r}\n")
        assert not timed_out, f"slr profile {' '.join(args)} hung (> {TIMEOUT} s)"
        with open(err, "rb") as stream:
            stderr = stream.read()
        code = os.waitstatus_to_exitcode(status)
        assert code in (0, 1), f"exit {code}: {stderr.decode(errors='replace')}"
        if code == 1:
            assert stderr.startswith(b"slr profile: ") and stderr.count(b"\n") == 1 and stderr.endswith(b"\n"), stderr
        elif output is None:
            with open(out, "rb") as stream:
                text = stream.read()
            profile = json.loads(text[:text.index(b"\n}\n") + 3] if b"\n}\n" in text else text)
            assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
        else:
            assert stderr == b"", stderr
            with open(output, "rb") as stream:
                assert json.loads(stream.read())["defaultAction"] == "SCMP_ACT_ERRNO"
        assert _fingerprint(victim_dir) == before, "a build-host file was changed"
        leftovers = [name for name in os.listdir(bundle) if name.startswith(".") and name.endswith(".tmp")]
        assert leftovers == []
    finally:
        hostile.remove_tree(work)
