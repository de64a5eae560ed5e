"""The fast start variants (issue 5 part 1): containers taken from a pre-created pool.

The pool belongs to the runtime core; this module is the one place that knows its
interface. ASSUMED until the pool lands (adjust these lines, nothing else):
  module            slruntime.pool, with a client function
                    slruntime.pool.client_run(root, pool, container_id) -> exit status
  create the pool   slr --root ROOT pool create --bundle BUNDLE --size 2 NAME  (returns when ready)
  CLI trigger       slr --root ROOT pool run NAME ID   (returns like `slr run`)
  remove the pool   slr --root ROOT pool delete NAME
Without the module both variants are reported as not available.
"""

import os
import subprocess

from bench.variant import Variant

POOL_MODULE = "slruntime.pool"
POOL_SIZE = "2"


def _has_pool(venv_python):
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({POOL_MODULE!r}) is None)"
    return subprocess.run([venv_python, "-c", probe], capture_output=True).returncode == 0


def _socket_trigger(root, pool):
    """Starts a container from the driver process through the pool's socket client, as a
    resident app manager would: no interpreter start per run."""
    def trigger(container_id):
        from slruntime.pool import client_run  # the driver runs in the venv
        return client_run(root, pool, container_id)
    return trigger


def variants(venv_python, slr, root, bundle):
    names = (("slr-fast-cli", "slr fast start (CLI)"), ("slr-fast-socket", "slr fast start (socket)"))
    if not os.access(slr, os.X_OK) or not _has_pool(venv_python):
        reason = f"slr has no fast start pool yet (no module {POOL_MODULE})"
        return [Variant(name, label, unavailable=reason) for name, label in names]
    version = subprocess.run([venv_python, "-c", "import slruntime; print('slruntime', slruntime.__version__)"],
                             capture_output=True, text=True).stdout.strip()

    def pool_variant(name, label, pool, **how):
        return Variant(name, label, version=version,
                       delete_argv=[slr, "--root", root, "delete", "--force", "{id}"],
                       setup=[slr, "--root", root, "pool", "create", "--bundle", bundle,
                              "--size", POOL_SIZE, pool],
                       teardown=[slr, "--root", root, "pool", "delete", pool], **how)
    return [pool_variant(names[0][0], names[0][1], "bench-cli",
                         argv=[slr, "--root", root, "pool", "run", "bench-cli", "{id}"]),
            pool_variant(names[1][0], names[1][1], "bench-socket",
                         trigger=_socket_trigger(root, "bench-socket"))]
