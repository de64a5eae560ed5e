"""The `slr` command line, following runc's conventions (flags, exit codes, JSON): the
global options, the table of commands (parsed by args.py), dispatch to commands.py
(and to the pool, fgac and profile command lines). Each command imports only what it
needs.
"""

import gc
import os
import sys

from slruntime import __version__
from slruntime.args import Command, Option, UsageError, help_text, integer, lookup, parse, positive_integer
from slruntime.errors import SlrError

USAGE = """usage: slr [global options] COMMAND [options] [arguments]

Global options:
  --root DIR            state directory (default /run/slr; $XDG_RUNTIME_DIR/slr unprivileged)
  --log FILE            log file (default stderr)
  --log-format FORMAT   text or json
  --debug               log debug messages
  --systemd-cgroup      (not supported: slr manages cgroupfs directly)

Commands:
  create    create a container            start     start a created container
  run       create and start a container  state     print a container's state as JSON
  kill      signal a container            delete    delete a container
  list      list containers               ps        list a container's processes
  exec      run a process in a container  pause     freeze a container
  resume    thaw a container              update    change a container's resources
  events    print resource statistics     spec      write a default config.json
  features  print supported features      profile   generate a seccomp profile from an image
  fgac      run the access-control server for rootless containers
  pool      fast start: pools of pre-created containers (create, run, delete, list)
  version   print the version

Run `slr COMMAND --help` for a command's options.
"""


def _fd_count(text):
    """--preserve-fds N: descriptors 3 .. 3+N-1 stay open. A negative N would move the
    first descriptor closed on exec below 3 and leak every descriptor of the caller."""
    count = int(text, 10)
    if not 0 <= count <= 1 << 20:  # the kernel's default fs.nr_open
        raise ValueError(text)
    return count


BUNDLE = Option(("--bundle", "-b"), "bundle", help="bundle directory (default: current directory)")
PID_FILE = Option(("--pid-file",), "pid_file", help="write the container process's pid to FILE")
CONSOLE_SOCKET = Option(("--console-socket",), "console_socket", help="unix socket that receives the pty master")
PRESERVE_FDS = Option(("--preserve-fds",), "preserve_fds", convert=_fd_count, help="pass N extra fds (from 3) to the container")
NO_PIVOT = Option(("--no-pivot",), "no_pivot", False, help="use MS_MOVE + chroot instead of pivot_root")
NO_NEW_KEYRING = Option(("--no-new-keyring",), "no_new_keyring", False, help="keep the caller's session keyring (default: a new one per process)")
FORMAT = Option(("--format", "-f"), "format", help="table or json")
CREATE_OPTIONS = (BUNDLE, PID_FILE, CONSOLE_SOCKET, PRESERVE_FDS, NO_PIVOT, NO_NEW_KEYRING)

GLOBAL_OPTIONS = (
    Option(("--root",), "root"),
    Option(("--log",), "log"),
    Option(("--log-format",), "log_format"),
    Option(("--debug",), "debug", False),
    Option(("--systemd-cgroup",), "systemd_cgroup", False),
    Option(("--rootless",), "rootless"),
    Option(("--criu",), "criu"),
    Option(("--help", "-h"), "help", False),
    Option(("--version", "-v"), "version", False),
)

RESOURCE_OPTIONS = (
    Option(("--resources", "-r"), "resources", help="resources JSON file (- for stdin)"),
    Option(("--memory",), "memory", convert=integer), Option(("--memory-reservation",), "memory_reservation", convert=integer),
    Option(("--memory-swap",), "memory_swap", convert=integer), Option(("--cpu-shares",), "cpu_shares", convert=integer),
    Option(("--cpu-quota",), "cpu_quota", convert=integer), Option(("--cpu-period",), "cpu_period", convert=integer),
    Option(("--cpuset-cpus",), "cpuset_cpus"), Option(("--cpuset-mems",), "cpuset_mems"),
    Option(("--pids-limit",), "pids_limit", convert=integer), Option(("--blkio-weight",), "blkio_weight", convert=integer),
)

EXEC_OPTIONS = (
    Option(("--process", "-p"), "process_file", help="process.json to run"),
    Option(("--tty", "-t"), "tty", False), CONSOLE_SOCKET,
    Option(("--detach", "-d"), "detach", False), PID_FILE,
    Option(("--env", "-e"), "env", multiple=True), Option(("--cwd",), "cwd"),
    Option(("--user", "-u"), "user"), Option(("--cap", "-c"), "cap", multiple=True),
    Option(("--no-new-privs",), "no_new_privs", False), PRESERVE_FDS,
    Option(("--additional-gids", "-g"), "additional_gids", multiple=True),
    Option(("--process-label",), "process_label"), Option(("--apparmor",), "apparmor"),
    Option(("--cgroup",), "cgroup"), Option(("--ignore-paused",), "ignore_paused", False),
)

COMMANDS = {
    "create": Command(CREATE_OPTIONS, ("id",)),
    "run": Command(CREATE_OPTIONS + (Option(("--detach", "-d"), "detach", False),
                                     Option(("--keep",), "keep", False, help="do not delete the container after it exits")),
                   ("id",)),
    "start": Command((), ("id",)),
    "state": Command((), ("id",)),
    "kill": Command((Option(("--all", "-a"), "all", False),), ("id", "?signal")),
    "delete": Command((Option(("--force", "-f"), "force", False),), ("id",)),
    "list": Command((FORMAT, Option(("--quiet", "-q"), "quiet", False)), ()),
    "ps": Command((FORMAT,), ("id",), extra=True),
    "exec": Command(EXEC_OPTIONS, ("id",), extra=True),
    "pause": Command((), ("id",)),
    "resume": Command((), ("id",)),
    "update": Command(RESOURCE_OPTIONS, ("id",)),
    "events": Command((Option(("--stats",), "stats", False), Option(("--interval",), "interval", convert=positive_integer)),
                      ("id",)),
    "spec": Command((BUNDLE, Option(("--rootless",), "rootless", False),
                     Option(("--fgac",), "fgac", help="notify mount/mknod to the FGAC server on this socket")), ()),
    "features": Command(),
    "version": Command(),
}


def default_root():
    if os.geteuid() == 0:
        return "/run/slr"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime_dir, "slr") if runtime_dir else f"/tmp/slr-{os.geteuid()}"


def main(argv=None):
    """Run one command; returns its exit code.

    Without the cyclic garbage collector, unless the command stays resident
    (_stays_resident): the imports and a container's setup make next to no reference
    cycles, yet the collector, run every 700 allocations, walked every object of the start
    path (~0.4 ms of the ~18 ms of CPU of a compact `slr run`), and in a forked init it
    would write to the header of every object inherited (copy-on-write faults). Objects
    without cycles are freed by reference counting as before."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    finally:
        if collecting:
            gc.enable()


def _main(argv):
    from slruntime import log

    logger = log.setup()
    try:
        i = 0
        while i < len(argv) and argv[i].startswith("-"):
            option = lookup(GLOBAL_OPTIONS, argv[i].partition("=")[0])
            i += 2 if option is not None and option.takes_value and "=" not in argv[i] else 1
        globals_, _ = parse(Command(GLOBAL_OPTIONS), argv[:i])
        from slruntime import config

        settings = config.load()
        for key in ("root", "log", "log_format"):
            if globals_[key] is None:
                globals_[key] = settings.get(key.replace("_", "-"))
        if globals_["log_format"] not in (None, "text", "json"):
            raise UsageError(f"invalid log format {globals_['log_format']!r}: use text or json")
        logger = log.setup(globals_["log"], globals_["log_format"] or "text", globals_["debug"])
        if globals_["version"]:
            return _version()
        if i >= len(argv) or globals_["help"]:
            sys.stdout.write(USAGE)
            return 0 if globals_["help"] else 1
        if globals_["systemd_cgroup"]:
            raise SlrError("--systemd-cgroup is not supported: slr manages cgroups through cgroupfs "
                           "(set cgroupsPath to a path, or configure your engine for cgroupfs)")
        command, rest = argv[i], argv[i + 1:]
        if _stays_resident(command, rest):
            gc.enable()
        if command in ("profile", "fgac"):
            return _delegate(command, rest)
        if command == "pool":
            from slruntime.pool.cli import main as pool_main

            return pool_main(globals_["root"] or default_root(), rest)
        if command not in COMMANDS:
            raise UsageError(f"unknown command {command!r}; run `slr --help`")
        if "--help" in rest or "-h" in rest:
            sys.stdout.write(help_text(f"slr {command}", COMMANDS[command]))
            return 0
        values, positionals = parse(COMMANDS[command], rest)
        from slruntime import commands

        values["housekeeping_pinned"] = config.pin_to_housekeeping(settings)
        root = globals_["root"] or default_root()
        code = getattr(commands, "cmd_" + command)(root, values, positionals)
        sys.stdout.flush()
        return code
    except SlrError as exc:
        _report_error(logger, str(exc))
        return exc.exit_code
    except OSError as exc:  # an unexpected system error still gets one line, not a traceback
        if logger.threshold == 0:
            raise
        _report_error(logger, str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


def _stays_resident(command, rest):
    """Whether `command` runs on after its start (a server, a pool's manager, a loop) or
    works through large data (profile): those keep the garbage collector. The foreground
    waits of run, exec and pool run allocate little, and nothing cyclic."""
    if command == "pool":
        return rest[:1] != ["run"]
    return command in ("fgac", "profile", "events")


def entry():
    """The console script: main(), then exit without the interpreter's teardown
    (a few milliseconds of every container start) once output is flushed."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        code = code or 1
    os._exit(code if isinstance(code, int) else 1)


def _report_error(logger, message):
    # The error goes to stderr for people and scripts, and to --log (if set) for engines.
    # One line, whatever it quotes: a path may hold a newline.
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    try:
        sys.stderr.write(f"slr: {message}\n")
        sys.stderr.flush()
    except OSError:
        pass
    if logger.path:
        logger.error(message)


def _version():
    from slruntime import OCI_VERSION

    sys.stdout.write(f"slr version {__version__}\nspec: {OCI_VERSION}\n")
    return 0


def _delegate(command, argv):
    if command == "profile":
        try:
            from slruntime.profile.cli import main as profile_main
        except ImportError as exc:  # e.g. the compact binary, built without the analysis tools
            raise SlrError(f"slr profile is not available in this build ({exc.name} is missing)") from None
        return profile_main(argv)
    from slruntime.fgac.cli import main as fgac_main

    return fgac_main(argv)
