"""`slr exec`: start another process in a running container.

The new process joins the init's namespaces (namespaces.JOIN_ORDER: user first, mount
last), is placed in the container's cgroup, and goes through the init's own setup steps
(process_setup): the container's seccomp profile, non-dumpable until exec so the
container cannot reach this interpreter through /proc (the CVE-2019-5736 class).
"""

import os

from slruntime import (container as lifecycle, libc, namespaces, process, process_setup, protocol, signals,
                       spec as specmod, transitions)
from slruntime.errors import SlrError
from slruntime.options import ProcessArgs
from slruntime.sync import Channel, fork_and_report, run_child

_SIGKILL = 9


def build_process(container, options):
    """The process to run: -p process.json, or the command line on top of the
    container's own process settings (as runc does). options: an options.ExecOptions."""
    base = lifecycle.effective_spec(container)
    rootless = os.geteuid() != 0
    if options.process_file:
        return base, specmod.load_process(options.process_file, rootless)
    if not options.args:
        raise SlrError("exec: a command to run is required")
    try:
        return base, specmod.exec_process(base, options, rootless)
    except specmod.SpecError as exc:
        raise SlrError(exc.located("exec")) from None


def execute(container, options):
    transitions.check("exec --ignore-paused" if options.ignore_paused else "exec", container)
    spec, proc = build_process(container, options)
    if spec.linux.namespace("mount") is None:
        # Its root is a chroot in the runtime's mount namespace, which joining the
        # init's namespaces would not enter (runc's exec then runs on the host's /).
        raise SlrError("exec: the container shares the runtime's mount namespace "
                       "(no mount entry in linux.namespaces): exec is not supported there")
    detach = options.detach
    proxy = None
    args = ProcessArgs(container.root, console_socket=options.console_socket, preserve_fds=options.preserve_fds,
                       new_session_keyring=not container.record.no_new_keyring,
                       housekeeping_pinned=options.housekeeping_pinned)
    if proc.terminal and not args.console_socket and not detach:
        from slruntime.terminal import ConsoleProxy, caller_window_size

        proxy = ConsoleProxy()
        args.console_socket = proxy.socket_path
        args.console_size = caller_window_size()
    if proc.terminal and not args.console_socket:
        raise SlrError("exec --tty needs --console-socket when detached")
    join_fds = _open_init_namespaces(container, spec)
    args.allow_setgroups = process.setgroups_allowed(container.pid)
    runtime_side, child_side = Channel.pair()
    if not detach:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    stage1 = os.fork()
    if stage1 == 0:
        runtime_side.close()
        run_child(child_side, "exec", _join_and_exec, spec, proc, child_side, join_fds, args)  # never returns
    child_side.close()
    for _, fd in join_fds:
        os.close(fd)
    pid = None
    try:
        cgroup = container.cgroup()
        if cgroup is not None:
            cgroup.add(stage1)
        runtime_side.send({"type": protocol.GO, "state": container.oci_state("running")})
        pid = runtime_side.expect(protocol.PID, "the exec process")["pid"]
        if proxy is not None:
            try:
                proxy.accept_console()
            except OSError:
                runtime_side.expect(protocol.READY, "the exec process")  # raises the child's own error
                raise SlrError("exec: the process sent no pty") from None
        runtime_side.expect(protocol.READY, "the exec process")
    except BaseException:
        _kill(stage1)
        if pid:
            _kill(pid)
        if proxy is not None:
            proxy.close()
        raise
    finally:
        runtime_side.close()
        lifecycle._reap(stage1)
    if options.pid_file:
        lifecycle.write_pid_file(options.pid_file, pid)
    if detach:
        return 0
    signals.forward_signals(pid)
    try:
        if proxy is not None:
            proxy.copy_until_exit(pid)
        return lifecycle.wait_exit_code(pid)
    finally:
        if proxy is not None:
            proxy.close()


def _kill(pid):
    try:
        os.kill(pid, _SIGKILL)
    except ProcessLookupError:
        pass


def _open_init_namespaces(container, spec):
    """The init's namespaces by /proc path, in namespaces.JOIN_ORDER."""
    init_pid = container.pid
    opened = []
    for ns_type in namespaces.JOIN_ORDER:
        if spec.linux.namespace(ns_type) is None:
            continue
        path = f"/proc/{init_pid}/ns/{namespaces.PROC_NAMES[ns_type]}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise SlrError(f"exec: cannot open {path}: {exc.strerror}") from None
        opened.append((ns_type, fd))
    if container.pid and not container.init_alive():
        for _, fd in opened:
            os.close(fd)
        raise transitions.refusal("exec", "stopped", container.id)
    return opened


def _join_and_exec(spec, proc, channel, join_fds, args):
    """Stage 1 joins the namespaces; its child (in the pid namespace) execs."""
    from slruntime import lsm

    libc.prctl(libc.PR_SET_PDEATHSIG, _SIGKILL)
    lx = spec.linux
    setup = process_setup.ProcessSetup(args, process_setup.prepare_seccomp(lx, args.state_root))
    go = channel.expect(protocol.GO, "the runtime")
    lsm.check(proc, None)
    setup.open_host_handles(proc, lx, proc.terminal)
    namespaces.join(join_fds)
    process_setup.forbid_imports()
    fork_and_report(channel)
    process_setup.run_on_initial_cpus(proc)
    executable = setup.become_process(proc)
    state = go["state"]
    channel.send({"type": protocol.READY})
    channel.close()
    setup.finalize(proc, state)
    setup.load_seccomp(state)
    setup.exec(proc, executable)
