"""The fast start variants (issue 5 part 1): containers taken from a pre-created pool.

The pool is slruntime.pool (see runtime/slruntime/pool/PROTOCOL.md). Each variant gets
its own pool of the benchmark's bundle (its config.json without linux.cgroupsPath), created before the first run and deleted after
the last; every run hands it /bin/true:
  slr-fast-cli          `slr --root ROOT pool run NAME -- /bin/true`, a process per run
  slr-fast-compact-cli  the same with the compact slr (runtime/compact), which also runs
                        that variant's pool, through its Python CLI: the command line
                        carries `--log-format text` (no effect on the run), which the
                        static front leaves to the frozen runtime it executes
  slr-fast-compact-c    the compact slr's plain `pool run` command line, which its static
                        front serves itself, without executing the frozen runtime
                        (runtime/compact/slr_front.c, pool_client.c): what embedded
                        systems run
  slr-fast-socket       slruntime.pool.client.start(socket, ["/bin/true"]).wait(), called
                        from the driver itself, as a resident app manager would: no
                        process is started per run
"""

import os
import subprocess

from bench.variant import Variant

POOL_MODULE = "slruntime.pool.client"
POOL_SIZE = "2"
PROCESS = ["/bin/true"]


def _has_pool(venv_python):
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({POOL_MODULE!r}) is None)"
    return subprocess.run([venv_python, "-c", probe], capture_output=True).returncode == 0


def _first_line(argv):
    out = subprocess.run(argv, capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().partition("\n")[0] or "unknown"


def _socket_trigger(root, pool):
    socket_path = os.path.join(root, "pools", pool, "pool.sock")
    devnull = []

    def trigger(container_id):  # the pool names its containers itself
        from slruntime.pool import client  # the driver runs in the venv

        if not devnull:
            devnull.append(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))
        return client.start(socket_path, PROCESS, stdio=devnull * 3).wait()
    return trigger


def variants(venv_python, slr, root, bundle, compact=None, compact_missing=None):
    """compact: the compact slr (its front, build/compact/<arch>/slr), or None with
    compact_missing saying why."""
    names = (("slr-fast-cli", "slr fast start (CLI)"), ("slr-fast-compact-cli", "compact slr fast start (CLI)"),
             ("slr-fast-socket", "slr fast start (socket)"), ("slr-fast-compact-c", "compact slr fast start (C client)"))
    if not os.access(slr, os.X_OK) or not _has_pool(venv_python):
        reason = f"slr has no fast start pool (no module {POOL_MODULE})"
        return [Variant(name, label, unavailable=reason) for name, label in names]
    version = subprocess.run([venv_python, "-c", "import slruntime; print('slruntime', slruntime.__version__)"],
                             capture_output=True, text=True).stdout.strip()

    def pool_variant(name, label, pool, binary=slr, **how):
        return Variant(name, label, version=version if binary == slr else _first_line([binary, "--version"]),
                       config_change="no linux.cgroupsPath: the members of a pool exist at the same "
                                     "time and cannot share one cgroup",
                       setup=[binary, "--root", root, "pool", "create", "--bundle", bundle, "--size", POOL_SIZE, pool],
                       teardown=[binary, "--root", root, "pool", "delete", pool], **how)

    def cli(binary, pool, *global_options):
        return [binary, *global_options, "--root", root, "pool", "run", pool, "--"] + PROCESS
    if compact:
        compact_variants = [
            pool_variant(names[1][0], names[1][1], "bench-compact-cli", binary=compact,
                         argv=cli(compact, "bench-compact-cli", "--log-format", "text")),
            pool_variant(names[3][0], names[3][1], "bench-compact-c", binary=compact,
                         argv=cli(compact, "bench-compact-c"))]
    else:
        compact_variants = [Variant(name, label, unavailable=compact_missing) for name, label in (names[1], names[3])]
    return [pool_variant(names[0][0], names[0][1], "bench-cli", argv=cli(slr, "bench-cli")),
            compact_variants[0],
            pool_variant(names[2][0], names[2][1], "bench-socket", trigger=_socket_trigger(root, "bench-socket")),
            compact_variants[1]]
