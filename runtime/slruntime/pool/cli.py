"""`slr pool create|run|delete|list`.

`pool run` is the fast start's command line: it imports the socket client and nothing
of the runtime (no manager, container or terminal module unless it needs a pty), and
connects to the pool's socket without reading any state file first.
"""

import os
import sys

from slruntime import signals
from slruntime.args import Command, Option, integer, parse
from slruntime.errors import SlrError
from slruntime.pool import socket_path

USAGE = """usage:
  slr pool create [--bundle DIR] [--size N] [--socket-group GROUP] NAME
                                                   start a pool of N ready containers (default 2);
                                                   root and you may use it, and GROUP's members
  slr pool run [-d] [-t] [-e K=V]... [--cwd DIR] NAME -- ARGS...
                                                   run ARGS in a ready container of the pool
  slr pool delete NAME                             stop the pool and delete its containers
  slr pool list [--format table|json]              list pools
"""


def _group(text):
    """A group name or number -> gid."""
    import grp

    try:
        return grp.getgrgid(int(text)).gr_gid if text.isdigit() else grp.getgrnam(text).gr_gid
    except (KeyError, ValueError):
        raise SlrError(f"--socket-group {text}: no such group") from None


COMMANDS = {
    "run": Command((Option(("--detach", "-d"), "detach", False), Option(("--tty", "-t"), "tty", False),
                    Option(("--env", "-e"), "env", multiple=True), Option(("--cwd",), "cwd")),
                   ("name", "args"), extra=True),
    "create": Command((Option(("--bundle", "-b"), "bundle"), Option(("--size", "-n"), "size", convert=integer),
                       Option(("--socket-group",), "socket_group", convert=_group)), ("name",)),
    "delete": Command((), ("name",)),
    "list": Command((Option(("--format", "-f"), "format"),)),
}


def main(root, argv):
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 1
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        raise SlrError(f"unknown pool command {command!r}; run `slr pool --help`")
    values, args = parse(COMMANDS[command], rest)
    if command == "run":
        return _run(root, args[0], args[1:], values)
    from slruntime import jsonlite
    from slruntime.pool import manager

    if command == "create":
        path = manager.start_daemon(root, args[0], values["bundle"] or os.getcwd(), values["size"] or 2,
                                    values["socket_group"])
        sys.stdout.write(path + "\n")
        return 0
    if command == "delete":
        manager.stop(root, args[0])
        return 0
    pools = manager.list_pools(root)
    if values["format"] == "json":
        sys.stdout.write(jsonlite.dumps(pools) + "\n")
    else:
        sys.stdout.write("NAME   SIZE   READY   STATUS   BUNDLE\n")
        for p in pools:
            sys.stdout.write(f"{p['name']}   {p['size']}   {p['ready']}   {p['status']}   {p['bundle']}\n")
    return 0


def _run(root, name, args, values):
    from slruntime.pool import client

    console_size = None
    if values["tty"]:
        from slruntime.terminal import caller_window_size

        console_size = caller_window_size()
    try:
        started = client.start(socket_path(root, name), args, env=values["env"], cwd=values["cwd"],
                               terminal=values["tty"], wait=not values["detach"], console_size=console_size)
    except client.PoolUnreachable:
        raise SlrError(f"pool {name} is not running") from None
    if values["detach"]:
        sys.stdout.write(f"{started.id}\n")
        return 0
    signals.forward_signals(started.pid)
    if started.pty is not None:
        from slruntime.terminal import ConsoleProxy

        proxy = ConsoleProxy.for_master(started.pty)
        try:
            proxy.copy_until_exit(started.pid)
        finally:
            proxy.close()
    return started.wait()
