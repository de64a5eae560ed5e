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

Both talk to the runtime over a sync.Channel (the messages and their order: protocol);
any failure is sent as one line and the process exits, so the runtime can clean up and
report it. The steps the init shares with exec processes and pool members (host
handles, terminal, finalisation, exec) are process_setup's.
"""

import os

from slruntime import hooks, libc, namespaces, process, process_setup, protocol, rootfs
from slruntime.errors import SlrError
from slruntime.state import INIT_COMM
from slruntime.sync import fork_and_report, run_child

_SIGKILL = 9


def stage1(spec, channel, join_fds, args):
    """Never returns: exits once the init is forked. args: an options.ProcessArgs."""
    libc.prctl(libc.PR_SET_PDEATHSIG, _SIGKILL)  # a dead runtime must not leave us behind
    seccomp_filter = process_setup.prepare_seccomp(spec.linux, args.state_root)
    go = channel.expect(protocol.GO, "the runtime")
    _enter_namespaces(spec.linux, channel, join_fds, ("user",))
    fork_and_report(channel)
    run_child(channel, "container init", _setup_and_wait, spec, channel, go, args, seccomp_filter)


def direct_init(spec, channel, join_fds, args):
    """The init, forked by the runtime into its new pid namespace (if any); does not return.
    (A runtime that dies during setup closes the channel: the init fails and exits.)"""
    seccomp_filter = process_setup.prepare_seccomp(spec.linux, args.state_root)
    go = channel.expect(protocol.GO, "the runtime")
    _enter_namespaces(spec.linux, channel, join_fds, ("user", "pid"))
    _setup_and_wait(spec, channel, go, args, seccomp_filter)


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
    from slruntime import cgroups

    setup = process_setup.ProcessSetup(args, seccomp_filter)
    libc.set_name(INIT_COMM)  # until execve: see container.start
    proc = spec.process
    lx = spec.linux
    in_userns = lx.namespace("user") is not None
    process_setup.run_on_initial_cpus(proc)
    cgroup = cgroups.from_state(go.get("cgroup"))
    root = args.shared_root or spec.root_path
    propagation, tree = rootfs.prepare(spec, in_userns, cgroup, root)

    if hooks.has_runtime_create_hooks(spec.hooks):
        channel.send({"type": protocol.HOOKS})
    state = channel.expect(protocol.OK, "the runtime")["state"]
    hooks.run(spec.hooks, "createContainer", _seen_from_inside(state, "created"))
    rootfs.protect(tree, spec, in_userns)  # sysctls, masked and read-only paths

    # Everything the host provides must be opened or imported before pivot_root
    # (forbid_imports, right after it, makes a later import this process's error).
    pool_fd = args.pool_fd
    if pool_fd is None:
        fifo_fd = os.open(f"/proc/self/fd/{args.fifo_fd}", os.O_RDWR | os.O_CLOEXEC)
        os.close(args.fifo_fd)
        wants_console = proc.terminal
    else:
        from slruntime.pool import member  # the process comes from the pool manager
        wants_console = False  # the pool's client asks for one, with its request
    if wants_console and not args.console_socket:
        raise SlrError("process.terminal needs --console-socket (or `slr run` in the foreground)")
    setup.open_host_handles(proc, lx, wants_console)
    if spec.hooks.get("startContainer"):
        import subprocess  # noqa: F401  (hooks.run needs it after the pivot)

    rootfs.enter(root, args.no_pivot, shares_mounts=rootfs.shares_runtime_mounts(lx))
    process_setup.forbid_imports()
    rootfs.finish(spec, propagation)
    if spec.hostname is not None:
        libc.sethostname(spec.hostname)
    if spec.domainname is not None:
        libc.setdomainname(spec.domainname)
    for i, hook in enumerate(spec.hooks.get("startContainer", ())):  # run by us, in the container
        process.refuse_runtime_binary(hook.path, "/", f"startContainer hook #{i} ({hook.path})")
    executable = setup.become_process(proc, find_program=pool_fd is None)
    # The container's process from here on: whatever the host cannot grant fails create.
    setup.finalize(proc, dict(state, status="creating"))

    channel.send({"type": protocol.CREATED})
    channel.close()
    channel.late_error_fd = args.error_fd
    if pool_fd is not None:
        def start_requested(requested, program):
            process.enter_cwd(requested.cwd)  # the request's
            _start(spec, setup, state, requested, program)
        member.serve_request(pool_fd, proc, start_requested)  # does not return
    if os.read(fifo_fd, 1) != b"0":
        raise SlrError("exec.fifo: unexpected start signal")
    # fifo_fd stays open (close-on-exec): `slr start` waits for its closing.
    _start(spec, setup, state, proc, executable)


def _start(spec, setup, state, proc, executable):
    """Does not return."""
    state["status"] = "running"
    # In the container's namespaces, as its process: credentials, capabilities,
    # no_new_privs and seccomp (the spec's "after start, before the user program").
    setup.load_seccomp(state)
    hooks.run(spec.hooks, "startContainer", _seen_from_inside(state, "created"))
    setup.exec(proc, executable)


def _seen_from_inside(state, status):
    """The state for hooks run in the container's namespaces: the lifecycle status at
    that point (the user's program has not run yet) and the pid as the container sees
    it, as the runtime-spec asks (and runc does)."""
    return dict(state, status=status, pid=os.getpid())
