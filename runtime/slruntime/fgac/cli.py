"""Command line of the FGAC server: `python -m slruntime.fgac` or `slr fgac`."""

import grp
import os
import sys

from slruntime.args import Command, Option, help_text, parse
from slruntime.errors import SlrError

DESCRIPTION = """Fine-grained access control server: performs the mount(2)/mknod(2) calls the policy
allows for containers whose seccomp filter notifies it (OCI linux.seccomp.listenerPath).
"""

COMMAND = Command((
    Option(("--socket",), "socket", help="unix socket to listen on (the containers' listenerPath)"),
    Option(("--policy",), "policy", help="policy file (format: slruntime/fgac/README.md); required"),
    Option(("--log",), "log", help="decision log, JSON lines, on tmpfs/ramfs (default: stderr)"),
    Option(("--socket-mode",), "socket_mode", default="0600", help="permissions of the socket, octal (default 0600)"),
    Option(("--socket-group",), "socket_group", help="group owning the socket (e.g. the runtime users' group)"),
    Option(("--cpus",), "cpus", help="CPU list the server and its helpers run on, e.g. 0 or 0-1,3 "
           "(keep it off the isolated real-time cores)"),
    Option(("--check",), "check", False, help="only validate the policy file and exit"),
    Option(("--help", "-h"), "help", False, help="show this help"),
))


def _cpu_list(text):
    cpus = set()
    for part in text.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or dash and not high.isdigit():
            raise SlrError(f"--cpus {text}: not a CPU list like 0-1,3")
        cpus.update(range(int(low), int(high if dash else low) + 1))
    return cpus


def main(argv=None, prog="slr fgac"):
    try:
        values, _ = parse(COMMAND, sys.argv[1:] if argv is None else argv)
        if values["help"]:
            sys.stdout.write(help_text(prog, COMMAND) + "\n" + DESCRIPTION)
            return 0
        return _run(values)
    except SlrError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(values):
    from slruntime.fgac import policy

    policy_path, socket, socket_mode = values["policy"], values["socket"], values["socket_mode"]
    group, cpus = values["socket_group"], values["cpus"]
    if not policy_path:
        raise SlrError("--policy is required")
    rules = policy.load(policy_path)
    if values["check"]:
        return 0
    if not socket:
        raise SlrError("--socket is required")
    if os.geteuid() != 0:
        raise SlrError("must run as root (it mounts and creates device nodes for containers)")
    try:
        mode = int(socket_mode, 8)
    except ValueError:
        raise SlrError(f"--socket-mode {socket_mode}: not an octal mode") from None
    gid = -1
    if group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise SlrError(f"--socket-group {group}: no such group") from None
    if cpus:
        try:
            os.sched_setaffinity(0, _cpu_list(cpus))
        except OSError as exc:
            raise SlrError(f"--cpus {cpus}: {exc.strerror}") from None

    from slruntime.fgac.decision_log import DecisionLog
    from slruntime.fgac.server import Server

    log = DecisionLog(values["log"])
    Server(socket, rules, policy_path, log, mode, gid).serve_forever()
    return 0
