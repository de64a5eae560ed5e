"""Fast start: pools of pre-created containers that only wait for their process.

A pool manager (manager.py) keeps N containers of one bundle created (namespaces,
mounts, cgroup: everything but the process). A client (client.py, or `slr pool run`)
hands it a process; a ready member receives it (member.py) and execs it at once.
The wire protocol is documented in PROTOCOL.md beside this file.
"""

import os

POOLS_DIR = "pools"


def pool_dir(root, name):
    return os.path.join(root, POOLS_DIR, name)


def socket_path(root, name):
    return os.path.join(pool_dir(root, name), "pool.sock")
