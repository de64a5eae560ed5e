"""Command line of the FGAC server: `python -m slruntime.fgac` or `slr fgac`."""

import argparse
import grp
import os
import sys

from slruntime.errors import SlrError


def _parser(prog):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fine-grained access control server: performs the mount(2)/mknod(2) calls "
        "the policy allows for containers whose seccomp filter notifies it (OCI linux.seccomp.listenerPath).",
    )
    parser.add_argument("--socket", help="unix socket to listen on (the containers' listenerPath)")
    parser.add_argument("--policy", required=True, help="policy file (format: slruntime/fgac/README.md)")
    parser.add_argument("--log", help="decision log, JSON lines, on tmpfs/ramfs (default: stderr)")
    parser.add_argument("--socket-mode", default="0600", help="permissions of the socket, octal (default 0600)")
    parser.add_argument("--socket-group", help="group owning the socket (e.g. the runtime users' group)")
    parser.add_argument("--cpus", help="CPU list the server and its helpers run on, e.g. 0 or 0-1,3 "
                        "(keep it off the isolated real-time cores)")
    parser.add_argument("--check", action="store_true", help="only validate the policy file and exit")
    return parser


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
        args = _parser(prog).parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return _run(args)
    except SlrError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args):
    from slruntime.fgac import policy

    rules = policy.load(args.policy)
    if args.check:
        return 0
    if not args.socket:
        raise SlrError("--socket is required")
    if os.geteuid() != 0:
        raise SlrError("must run as root (it mounts and creates device nodes for containers)")
    try:
        mode = int(args.socket_mode, 8)
    except ValueError:
        raise SlrError(f"--socket-mode {args.socket_mode}: not an octal mode") from None
    gid = -1
    if args.socket_group:
        try:
            gid = grp.getgrnam(args.socket_group).gr_gid
        except KeyError:
            raise SlrError(f"--socket-group {args.socket_group}: no such group") from None
    if args.cpus:
        try:
            os.sched_setaffinity(0, _cpu_list(args.cpus))
        except OSError as exc:
            raise SlrError(f"--cpus {args.cpus}: {exc.strerror}") from None

    from slruntime.fgac.decision_log import DecisionLog
    from slruntime.fgac.server import Server

    log = DecisionLog(args.log)
    Server(args.socket, rules, args.policy, log, mode, gid).serve_forever()
    return 0
