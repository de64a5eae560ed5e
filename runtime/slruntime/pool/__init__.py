"""Fast start: pools of pre-created containers that only wait for their process.

A pool manager (manager.py) keeps N containers of one bundle created (namespaces,
mounts, cgroup: everything but the process). A client (client.py, or `slr pool run`)
hands it a process; a ready member receives it (member.py) and execs it at once.
The wire protocol is documented in PROTOCOL.md beside this file.
"""

import os

from slruntime.errors import SlrError

POOLS_DIR = "pools"
# The members' ids are NAME-PID-N, container ids of at most 255 characters.
MAX_NAME = 200


def valid_name(name):
    """A pool's name is one path component under <root>/pools (its directory and
    socket): a container id's characters, so never "..", "/" or empty."""
    from slruntime.state import valid_id

    return len(name) <= MAX_NAME and valid_id(name)


def pool_dir(root, name):
    """The pool's directory; every path of a pool is made here, from a checked name."""
    if not valid_name(name):
        raise SlrError(f"invalid pool name {name!r}: use up to {MAX_NAME} letters, digits and _+-.")
    return os.path.join(root, POOLS_DIR, name)


def socket_path(root, name):
    return os.path.join(pool_dir(root, name), "pool.sock")
