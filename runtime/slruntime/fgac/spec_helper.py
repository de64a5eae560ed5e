"""Adds the seccomp section a container needs to be served by the FGAC server
(`slr spec --fgac SOCKET`)."""

import os

NOTIFY_SYSCALLS = ("mount", "mknod", "mknodat", "umount2")
S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000
# Node types anyone may create (regular file, FIFO, socket; 0 means regular file).
_UNPRIVILEGED_NODE_TYPES = (0, 0o100000, 0o010000, 0o140000)
_MODE_ARGUMENT = {"mknod": 1, "mknodat": 2}
_PERMISSIVE = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG")


def _mode_is(index, node_type, action):
    arg = {"index": index, "value": S_IFMT, "valueTwo": node_type, "op": "SCMP_CMP_MASKED_EQ"}
    return {"names": [], "action": action, "args": [arg]}


def add_seccomp_notify(config, socket_path, syscalls=NOTIFY_SYSCALLS, metadata=None):
    """Make `syscalls` notify the FGAC server listening on `socket_path`; returns the
    same `config` dict, changed in place.

    mknod/mknodat notify only for character and block devices: FIFOs, sockets and
    regular files need no privilege and keep whatever the profile said before.
    An existing profile keeps its other rules; rules naming these syscalls lose those
    names (the server decides for them now).
    """
    if not os.path.isabs(socket_path):
        raise ValueError(f"FGAC socket {socket_path!r} is not an absolute path")
    seccomp = config.setdefault("linux", {}).setdefault("seccomp", {"defaultAction": "SCMP_ACT_ALLOW"})
    wanted = set(syscalls)
    allowed_before = set()
    rules = []
    for rule in seccomp.get("syscalls", []):
        names = rule.get("names", [])
        if rule.get("action") in _PERMISSIVE and not rule.get("args"):
            allowed_before.update(wanted.intersection(names))
        rest = [name for name in names if name not in wanted]
        if rest:
            rules.append(dict(rule, names=rest))
    default_permissive = seccomp.get("defaultAction") in _PERMISSIVE
    for name in syscalls:
        index = _MODE_ARGUMENT.get(name)
        if index is None:
            rules.append({"names": [name], "action": "SCMP_ACT_NOTIFY"})
            continue
        for node_type in (S_IFCHR, S_IFBLK):
            rules.append(dict(_mode_is(index, node_type, "SCMP_ACT_NOTIFY"), names=[name]))
        if name in allowed_before and not default_permissive:
            for node_type in _UNPRIVILEGED_NODE_TYPES:
                rules.append(dict(_mode_is(index, node_type, "SCMP_ACT_ALLOW"), names=[name]))
    seccomp["syscalls"] = rules
    seccomp["listenerPath"] = socket_path
    if metadata is not None:
        seccomp["listenerMetadata"] = metadata
    else:
        seccomp.pop("listenerMetadata", None)
    return config
