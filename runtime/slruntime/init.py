"""What runs inside the new container: the namespace stage and the container's init.

  runtime --fork--> stage 1: joins/creates namespaces (user first, mapped by the
                    runtime), then forks the init, reports its pid and exits
  stage 1 --fork--> init: pid 1 of a new pid namespace; builds the rootfs, runs
                    createContainer hooks, masks paths, pivots, becomes the container's process
                    (user, capabilities...), waits on exec.fifo, runs
                    startContainer hooks, execs

Without a user or time namespace, and with a pid namespace of its own (or none), the
runtime forks the init directly (namespaces.runtime_forks_init), already in its new pid
namespace: direct_init joins/creates the other namespaces and goes on as the init.

Both talk to the runtime over a sync.Channel; any failure is sent as one line and
the process exits, so the runtime can clean up and report it.
"""

import os

from slruntime import hooks, libc, namespaces, process, protocol, rootfs
from slruntime.errors import SlrError
from slruntime.state import INIT_COMM
from slruntime.sync import fork_and_report, run_child

_SIGKILL = 9


def stage1(spec, channel, join_fds, args):
    """Never returns: exits once the init is forked. args: an options.ProcessArgs."""
    libc.prctl(libc.PR_SET_PDEATHSIG, _SIGKILL)  # a dead runtime must not leave us behind
    seccomp_filter = _build_seccomp(spec.linux, args)
    go = channel.expect(protocol.GO, "the runtime")
    _enter_namespaces(spec.linux, channel, join_fds, ("user",))
    fork_and_report(channel)
    run_child(channel, "container init", _setup_and_wait, spec, channel, go, args, seccomp_filter)


def direct_init(spec, channel, join_fds, args):
    """The init, forked by the runtime into its new pid namespace (if any); does not return.
    (A runtime that dies during setup closes the channel: the init fails and exits.)"""
    seccomp_filter = _build_seccomp(spec.linux, args)
    go = channel.expect(protocol.GO, "the runtime")
    _enter_namespaces(spec.linux, channel, join_fds, ("user", "pid"))
    _setup_and_wait(spec, channel, go, args, seccomp_filter)


def _build_seccomp(lx, args):
    """The filter program, prepared (not loaded) before waiting for the runtime's go:
    from the state root's cache, or compiled (importing pyseccomp and adding hundreds of
    rules take milliseconds, which then overlap with the runtime putting the process in
    its cgroup, a write that waits for an RCU grace period). Before any namespace is
    entered: in the container's mount namespace the cache's path would name a file the
    image can provide."""
    if not lx.seccomp:
        return None
    from slruntime import seccomp

    return seccomp.prepare(lx.seccomp, args.state_root, lx.seccomp_floor)


def _enter_namespaces(lx, channel, join_fds, created_elsewhere):
    namespaces.join(join_fds)
    user_ns = lx.namespace("user")
    if user_ns is not None and user_ns.path is None:
        libc.unshare(libc.CLONE_NEWUSER)
        channel.send({"type": protocol.USERNS})
        channel.expect(protocol.MAPPED, "the runtime")
        # Become the namespace's root (when mapped) to build the rootfs as it.
        if _maps_zero(lx.gid_mappings):
            os.setresgid(0, 0, 0)
        if _maps_zero(lx.uid_mappings):
            os.setresuid(0, 0, 0)
    libc.unshare(namespaces.new_flags(lx.namespaces, created_elsewhere))
    time_ns = lx.namespace("time")
    if time_ns is not None and time_ns.path is None and lx.time_offsets:
        namespaces.write_time_offsets(lx.time_offsets)


def _maps_zero(mappings):
    return any(m.container_id == 0 for m in mappings)


def _setup_and_wait(spec, channel, go, args, seccomp_filter):
    from slruntime.cgroups import Cgroup

    # Keep /proc/PID/exe, mem and fds of this interpreter out of the container's
    # reach until exec replaces it (the CVE-2019-5736 class); exec resets it.
    libc.prctl(libc.PR_SET_DUMPABLE, 0)
    libc.set_name(INIT_COMM)  # until execve: see container.start
    proc = spec.process
    lx = spec.linux
    in_userns = lx.namespace("user") is not None
    if proc.exec_cpu_affinity:
        process.set_cpu_affinity(proc.exec_cpu_affinity[0])
    cgroup = Cgroup.from_state(go.get("cgroup"))
    root = args.shared_root or spec.root_path
    propagation, tree = rootfs.prepare(spec, in_userns, cgroup, root)

    if hooks.has_runtime_create_hooks(spec.hooks):
        channel.send({"type": protocol.HOOKS})
    state = channel.expect(protocol.OK, "the runtime")["state"]
    hooks.run(spec.hooks, "createContainer", _seen_from_inside(state, "created"))
    rootfs.protect(tree, spec, in_userns)  # sysctls, masked and read-only paths

    # Everything the host provides must be opened or imported before pivot_root.
    pool_fd = args.pool_fd
    if pool_fd is None:
        fifo_fd = os.open(f"/proc/self/fd/{args.fifo_fd}", os.O_RDWR | os.O_CLOEXEC)
        os.close(args.fifo_fd)
        wants_console = proc.terminal
    else:
        from slruntime.pool import member  # the process comes from the pool manager
        wants_console = False
    console = process.connect_unix(args.console_socket, "console socket") if wants_console and args.console_socket else None
    listener = None
    if lx.seccomp and lx.seccomp.get("listenerPath"):
        listener = (process.connect_unix(lx.seccomp["listenerPath"], "seccomp listener"),
                    lx.seccomp.get("listenerMetadata"))
    if spec.hooks.get("startContainer"):
        import subprocess  # noqa: F401  (hooks.run needs it after the pivot)
    from slruntime import lsm

    lsm_attrs = lsm.open_exec_attrs(proc)
    allow_setgroups = process.setgroups_allowed()

    rootfs.enter(root, args.no_pivot, shares_mounts=rootfs.shares_runtime_mounts(lx))
    rootfs.finish(spec, propagation)
    if spec.hostname is not None:
        libc.sethostname(spec.hostname)
    if spec.domainname is not None:
        libc.setdomainname(spec.domainname)
    # As root, before finalize changes the user: the check of the program (and of its
    # "#!" interpreters) reads files the container's user may not.
    executable = process.find_executable(proc.args[0], proc.env, proc.cwd) if pool_fd is None else None
    for i, hook in enumerate(spec.hooks.get("startContainer", ())):  # run by us, in the container
        process.refuse_runtime_binary(hook.path, "/", f"startContainer hook #{i} ({hook.path})")
    if wants_console:
        if console is None:
            raise SlrError("process.terminal needs --console-socket (or `slr run` in the foreground)")
        master, slave = process.open_pty(proc.console_size or args.console_size)
        process.send_console(console, master)
        process.become_terminal(slave)
    process.set_rlimits(proc.rlimits)
    # The container's process from here on: whatever the host cannot grant fails create.
    seccomp_filter = process.finalize(proc, seccomp_filter, listener, dict(state, status="creating"),
                                      allow_setgroups, lsm_attrs, args.new_session_keyring, args.housekeeping_pinned)

    channel.send({"type": protocol.CREATED})
    channel.close()
    channel.late_error_fd = args.error_fd
    if pool_fd is None:
        if os.read(fifo_fd, 1) != b"0":
            raise SlrError("exec.fifo: unexpected start signal")
        # fifo_fd stays open (close-on-exec): `slr start` waits for its closing.
    else:
        proc, executable = member.receive_process(pool_fd, proc)
        process.enter_cwd(proc.cwd)  # the request's
    state["status"] = "running"
    process.load_seccomp(seccomp_filter, listener, state)
    # In the container's namespaces, as its process: credentials, capabilities,
    # no_new_privs and seccomp (the spec's "after start, before the user program").
    hooks.run(spec.hooks, "startContainer", _seen_from_inside(state, "created"))
    process.exec_process(proc, executable, args.preserve_fds)


def _seen_from_inside(state, status):
    """The state for hooks run in the container's namespaces: the lifecycle status at
    that point (the user's program has not run yet) and the pid as the container sees
    it, as the runtime-spec asks (and runc does)."""
    return dict(state, status=status, pid=os.getpid())
