"""One function per `slr` command: parsed arguments in, exit code out, runc-shaped
output. The operations themselves are the container layer's (container.py, control.py,
execute.py); what each is allowed to do in which status, transitions.py's."""

import os
import sys

from slruntime import jsonlite
from slruntime.errors import SlrError
from slruntime.options import CreateOptions, ExecOptions
from slruntime.state import Container


def _print_json(value, indent=2):
    sys.stdout.write(jsonlite.dumps(value, indent) + "\n")


def _bundle(values):
    return values.get("bundle") or os.getcwd()


def _create_options(values):
    return CreateOptions(pid_file=values.get("pid_file"), console_socket=values.get("console_socket"),
                         preserve_fds=values.get("preserve_fds") or 0, no_pivot=values.get("no_pivot", False),
                         no_new_keyring=values.get("no_new_keyring", False), detach=values.get("detach", False),
                         keep=values.get("keep", False), housekeeping_pinned=values.get("housekeeping_pinned", False))


def cmd_create(root, values, args):
    from slruntime import container

    container.create(root, args[0], _bundle(values), _create_options(values))
    return 0


def cmd_run(root, values, args):
    from slruntime import container

    return container.run(root, args[0], _bundle(values), _create_options(values))


def cmd_start(root, values, args):
    from slruntime import container

    container.start(Container.load(root, args[0]))
    return 0


def cmd_state(root, values, args):
    _print_json(Container.load(root, args[0]).runc_state())
    return 0


def parse_signal(text):
    """SIGTERM, TERM, term or 15 -> 15."""
    import _signal

    if text.isdigit():
        number = int(text)
        if not 0 < number < 65:
            raise SlrError(f"invalid signal {text!r}")
        return number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    number = getattr(_signal, name, None)
    if not isinstance(number, int) or name in ("SIG_DFL", "SIG_IGN", "SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK"):
        raise SlrError(f"invalid signal {text!r}")
    return number


def cmd_kill(root, values, args):
    from slruntime import container

    signal = parse_signal(args[1]) if len(args) > 1 else 15
    container.kill(Container.load(root, args[0]), signal, values["all"])
    return 0


def cmd_delete(root, values, args):
    from slruntime import container
    from slruntime.errors import ContainerNotFound

    try:
        target = Container.load(root, args[0])
    except ContainerNotFound:
        if values["force"]:
            return 0  # runc: deleting a missing container with --force is not an error
        raise
    container.delete(target, values["force"])
    return 0


def cmd_list(root, values, args):
    containers = [c.runc_state() for c in Container.all(root)]
    fmt = values.get("format") or "table"
    if values["quiet"]:
        for c in containers:
            sys.stdout.write(c["id"] + "\n")
    elif fmt == "json":
        _print_json(containers, None)
    elif fmt == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(c["id"], str(c["pid"]), c["status"], c["bundle"], c["created"], c["owner"] or "root")
                 for c in containers]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for row in rows:
            sys.stdout.write("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
    else:
        raise SlrError(f"invalid format {fmt!r}: use table or json")
    return 0


def _container_pids(container):
    cgroup = container.cgroup()
    if cgroup is not None:
        return cgroup.pids()
    return [container.pid] if container.init_alive() else []


def cmd_ps(root, values, args):
    container = Container.load(root, args[0])
    pids = _container_pids(container)
    fmt = values.get("format") or "table"
    if fmt == "json":
        _print_json(pids, None)
        return 0
    if fmt != "table":
        raise SlrError(f"invalid format {fmt!r}: use table or json")
    sys.stdout.write("PID   CMD\n")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        sys.stdout.write(f"{pid:<5} {_printable(cmd)}\n")
    return 0


def _printable(text):
    """`text` with every character a terminal would act on shown as "?", as ps(1) does:
    a container writes its own command line, and a newline in it forged rows (say, a
    host pid for the operator to kill), an escape sequence drove the operator's terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


def cmd_exec(root, values, args):
    from slruntime import execute

    container = Container.load(root, args[0])
    options = ExecOptions(args=args[1:], process_file=values["process_file"], tty=values["tty"], env=values["env"],
                          cwd=values["cwd"], user=values["user"], additional_gids=values["additional_gids"],
                          cap=values["cap"], no_new_privs=values["no_new_privs"], apparmor=values["apparmor"],
                          process_label=values["process_label"], cgroup=values["cgroup"],
                          console_socket=values["console_socket"], detach=values["detach"],
                          pid_file=values["pid_file"], preserve_fds=values["preserve_fds"] or 0,
                          ignore_paused=values["ignore_paused"],
                          housekeeping_pinned=values.get("housekeeping_pinned", False))
    return execute.execute(container, options)


def cmd_pause(root, values, args):
    from slruntime import control

    control.pause(Container.load(root, args[0]))
    return 0


def cmd_resume(root, values, args):
    from slruntime import control

    control.resume(Container.load(root, args[0]))
    return 0


def _resources_from_flags(values):
    if values.get("resources"):
        source = values["resources"]
        try:
            if source == "-":
                return jsonlite.load_stream(sys.stdin.buffer)
            return jsonlite.load_file(source)
        except (OSError, ValueError) as exc:
            raise SlrError(f"--resources {source}: {exc}") from None
    res = {}

    def put(section, key, value):
        if value is not None:
            res.setdefault(section, {})[key] = value

    put("memory", "limit", values.get("memory"))
    put("memory", "reservation", values.get("memory_reservation"))
    put("memory", "swap", values.get("memory_swap"))
    put("cpu", "shares", values.get("cpu_shares"))
    put("cpu", "quota", values.get("cpu_quota"))
    put("cpu", "period", values.get("cpu_period"))
    put("cpu", "cpus", values.get("cpuset_cpus"))
    put("cpu", "mems", values.get("cpuset_mems"))
    put("pids", "limit", values.get("pids_limit"))
    put("blockIO", "weight", values.get("blkio_weight"))
    return res


def cmd_update(root, values, args):
    from slruntime import control

    container = Container.load(root, args[0])
    control.update(container, _resources_from_flags(values))
    return 0


def cmd_events(root, values, args):
    from slruntime import control

    def emit(event):
        sys.stdout.write(jsonlite.dumps(event) + "\n")
        sys.stdout.flush()

    control.events(Container.load(root, args[0]), values.get("interval") or 5, values["stats"], emit)
    return 0


def cmd_spec(root, values, args):
    from slruntime.specgen import default_config

    bundle = values.get("bundle") or os.getcwd()
    path = os.path.join(bundle, "config.json")
    config = default_config(rootless=values["rootless"])
    if values.get("fgac"):
        from slruntime.fgac.spec_helper import add_seccomp_notify

        add_seccomp_notify(config, os.path.abspath(values["fgac"]))
    # Created, never opened: the directory may be shared (/tmp), and a dangling symlink
    # planted as config.json would have had root create (or a race, truncate) its target.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise SlrError(f"File {path} exists. Remove it first") from None
    except OSError as exc:
        raise SlrError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with open(fd, "w") as f:
            f.write(jsonlite.dumps(config, 2) + "\n")
    except OSError as exc:
        raise SlrError(f"cannot write {path}: {exc.strerror}") from None
    return 0


def cmd_features(root, values, args):
    from slruntime.features import features

    _print_json(features())
    return 0


def cmd_version(root, values, args):
    from slruntime import OCI_VERSION, __version__

    sys.stdout.write(f"slr version {__version__}\nspec: {OCI_VERSION}\n")
    return 0
