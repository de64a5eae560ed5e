"""The operations that build and tear down a container: create, start, run, kill,
delete (pause, resume, update and events are control.py's, exec execute.py's; which
status allows which, transitions.py's).

Every operation that fails part-way undoes what it did: no state directory, cgroup,
mount or process survives a failed create.
"""

import os

from slruntime import files, hooks, libc, protocol, signals, spec as specmod, transitions
from slruntime.errors import SlrError
from slruntime.options import ProcessArgs
from slruntime.state import INIT_COMM, INIT_ERROR, SHARED_ROOT, Container, exec_outcome, process_start_time
from slruntime.sync import Channel, run_child

SIGKILL = 9


def _is_rootless():
    return os.geteuid() != 0


def load_for_create(bundle):
    """The bundle's config, validated and checked against this host, as create uses it."""
    spec = specmod.load_bundle(bundle, _is_rootless())
    if spec.process is None:
        raise SlrError("config.json: process: is required to create a container")
    specmod.check_rootfs(spec)
    from slruntime import lsm

    lsm.check(spec.process, spec.linux.mount_label)
    if spec.linux.seccomp is None:
        from slruntime import seccomp_default

        seccomp_default.apply(spec)
    return spec


def create(root, container_id, bundle, options, spec=None):
    """Create a container up to the point where only its process remains to start.
    options: an options.CreateOptions.
    spec: what load_for_create(bundle) returned, when the caller has it already."""
    spec = spec or load_for_create(bundle)
    container = Container.reserve(root, container_id, spec.bundle, spec.annotations)
    container.record.rootfs = spec.root_path
    try:
        _create(container, spec, options, _is_rootless())
    except BaseException:
        destroy(container, spec)
        raise
    return container


def _create(container, spec, options, rootless):
    from slruntime import cgroups, namespaces
    from slruntime.cgroups import devices

    device_policy = devices.Policy(devices.rules(spec.linux.resources.devices, spec.linux.devices))
    container.save_config(spec.raw)
    if spec.linux.seccomp is not None:
        # The profile may come from elsewhere than config.json (load_for_create): exec
        # and every later process get what the init got (effective_spec).
        container.save_seccomp(specmod.seccomp_record(spec.linux))
    os.mkfifo(container.fifo, 0o600)
    lx = spec.linux
    _give_to_container_root(container.fifo, lx)
    # The cgroup is ready before the fork: less for the runtime to do while it shares
    # its memory with the child (each page it writes then is copied).
    cgroups_path = lx.cgroups_path or cgroups.default_path(container.root, container.id)
    if lx.cgroups_path and options.pool:
        # A pool's members share one config: its cgroupsPath is their parent.
        cgroups_path = f"{lx.cgroups_path.rstrip('/')}/{container.id}"
    cgroup = cgroups.create(cgroups_path, lx.resources, rootless, own_parents=not lx.cgroups_path)
    if cgroup is not None:
        container.record.cgroup = cgroup.to_state()
        container.save()
        cgroup.apply(lx.resources)
        cgroup.set_devices(device_policy)
    join_fds = namespaces.open_join_targets(lx.namespaces, specmod.settings_in_namespaces(spec))
    runtime_side, child_side = Channel.pair()
    init_args = ProcessArgs(container.root, console_socket=options.console_socket, console_size=options.console_size,
                            preserve_fds=options.preserve_fds, new_session_keyring=not options.no_new_keyring,
                            housekeeping_pinned=options.housekeeping_pinned)
    init_args.no_pivot = options.no_pivot
    init_args.pool_fd = options.pool_fd
    if lx.namespace("mount") is None:  # built in the runtime's mount namespace: see rootfs.prepare
        init_args.shared_root = os.path.join(container.dir, SHARED_ROOT)
        os.mkdir(init_args.shared_root, 0o700)
    if options.no_new_keyring:
        container.record.no_new_keyring = True  # for `exec` processes too, as runc
    if options.pool:
        container.record.pool = options.pool
    if options.subreaper:
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    # The init reopens the fifo through this descriptor: from a user namespace it
    # may not be allowed to walk the path to the state directory.
    init_args.fifo_fd = os.open(container.fifo, os.O_PATH | os.O_CLOEXEC)
    if options.pool_fd is None:  # (a pool member's process comes later, from its manager)
        init_args.error_fd = os.open(os.path.join(container.dir, INIT_ERROR),
                                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        child, direct = _fork_container_side(spec, runtime_side, child_side, join_fds, init_args)
    except BaseException:
        runtime_side.close()  # a child forked before the failure reads end-of-file and exits
        raise
    finally:
        os.close(init_args.fifo_fd)
        if init_args.error_fd is not None:
            os.close(init_args.error_fd)
        child_side.close()
        for _, fd in join_fds:
            os.close(fd)
    if direct:  # the child is the init: recorded at once, so a failure below kills it
        container.record.pid, container.record.init_start_time = child, process_start_time(child)
    try:
        if cgroup is not None:
            cgroup.add(child)
        runtime_side.send({"type": protocol.GO, "cgroup": container.record.cgroup})
        user_ns = lx.namespace("user")
        if user_ns is not None and user_ns.path is None:
            runtime_side.expect(protocol.USERNS)
            namespaces.write_id_maps(child, lx.uid_mappings, lx.gid_mappings)
            runtime_side.send({"type": protocol.MAPPED})
        if not direct:
            init_pid = runtime_side.expect(protocol.PID)["pid"]
            container.record.pid, container.record.init_start_time = init_pid, process_start_time(init_pid)
        container.save()
        if spec.process.oom_score_adj is not None:
            _write_oom_score_adj(container.pid, spec.process.oom_score_adj)
        # The hooks of create run once the environment is built: the spec's "created"
        # (what runtime-tools' hooks_stdin checks, and crun passes; runc says "creating").
        state = container.oci_state("created")
        if hooks.has_runtime_create_hooks(spec.hooks):
            runtime_side.expect(protocol.HOOKS)  # the init has built the rootfs and waits for them
            hooks.run(spec.hooks, "prestart", state)
            hooks.run(spec.hooks, "createRuntime", state)
        # Without those hooks the init does not stop to ask: this waits in the pipe for it.
        runtime_side.send({"type": protocol.OK, "state": state})
        runtime_side.expect(protocol.CREATED)
    finally:
        runtime_side.close()
        if not direct:
            _reap(child)
    container.record.status = "created"
    container.save()
    if options.pid_file:
        write_pid_file(options.pid_file, container.pid)


def _fork_container_side(spec, runtime_side, child_side, join_fds, init_args):
    """Fork what becomes the container. The init itself when the runtime can put it in
    its namespaces (namespaces.runtime_forks_init): one process and two hand-offs less
    per start; else stage 1, which forks the init. Returns (pid, whether it is the init)."""
    from slruntime import namespaces

    lx = spec.linux
    direct = namespaces.runtime_forks_init(lx.namespaces)
    if direct and lx.namespace("pid") is not None:
        child = namespaces.fork_into_new_pid_namespace()
    else:
        child = os.fork()
    if child == 0:
        runtime_side.close()
        what = "container init" if direct else "container setup"
        run_child(child_side, what, _container_side, direct, spec, child_side, join_fds, init_args)  # never returns
    return child, direct


def _container_side(direct, spec, channel, join_fds, init_args):
    """The forked child's life. The modules only the container's side runs (init,
    process, rootfs, capabilities...: ~1 ms to import in the compact binary) are
    imported here, on the host's files, before the child waits for the runtime's go:
    meanwhile the runtime puts it into its cgroup, a cgroup.procs write that waits for
    an RCU grace period (0.5 ms on a quiet machine, 10 ms at load 6 here), so on two
    CPUs the imports no longer add to the start."""
    from slruntime import init

    (init.direct_init if direct else init.stage1)(spec, channel, join_fds, init_args)


def _give_to_container_root(path, lx):
    """Chown `path` to the host ids of a new user namespace's root, who opens it."""
    user_ns = lx.namespace("user")
    if user_ns is None or user_ns.path is not None or os.geteuid() != 0:
        return
    uid = next((m.host_id for m in lx.uid_mappings if m.container_id == 0), -1)
    gid = next((m.host_id for m in lx.gid_mappings if m.container_id == 0), -1)
    os.chown(path, uid, gid)


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _write_oom_score_adj(pid, value):
    try:
        files.write_once(f"/proc/{pid}/oom_score_adj", value)
    except OSError as exc:
        raise SlrError(f"process.oomScoreAdj {value}: {exc.strerror}") from None


def write_pid_file(path, pid):
    path = os.path.abspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        # The pid file's directory may be shared (/tmp): never write through a symlink
        # someone planted at the temporary name, as root, into a file of their choice.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SlrError(f"--pid-file {path}: {exc.strerror}") from None


def saved_spec(container):
    """The validated config the container was created with."""
    return specmod.parse(container.saved_config(), container.record.bundle)


def effective_spec(container):
    """The saved config with the seccomp profile the container's init got (recorded at
    create): what another process of the container must get too."""
    spec = saved_spec(container)
    recorded = container.saved_seccomp()
    if recorded is not None:
        specmod.apply_seccomp_record(spec.linux, recorded)
    return spec


def start(container, spec=None):
    """spec: the container's, when the caller has it (else read from the state directory)."""
    transitions.check("start", container)
    try:
        fd = os.open(container.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise SlrError(f"container {container.id}: init is not waiting for start: {exc.strerror}") from None
    spec = spec or saved_spec(container)
    try:
        os.write(fd, b"0")
        _wait_for_exec(fd)
    finally:
        os.close(fd)
    _check_init_reached_exec(container)
    mark_started(container, spec)


def _wait_for_exec(fifo_fd):
    """Until the init has executed the user's process, or died trying (as runc's start
    waits): the init holds exec.fifo open close-on-exec until its execve, and a fifo's
    write end polls POLLERR once it has no reader. (Poststart hooks run after that, as
    the spec orders, and a failed exec is this start's error.)"""
    libc.wait_for_hangup(fifo_fd)


def _check_init_reached_exec(container):
    """Raise the init's failure between `start` and the execve of the user's process as
    this command's one-line error: the one it wrote to init.error (bad cwd, user, exec),
    or its death, which it could not report (its own seccomp filter denied what it
    needed): never as if it were the container's exit status."""
    try:
        message = files.read_regular(os.path.join(container.dir, INIT_ERROR), 65536)
    except (OSError, ValueError):
        message = b""
    if message:
        raise SlrError(message.decode(errors="replace").strip())
    import time

    deadline = time.monotonic() + 10
    while True:  # the fifo closes early in the exit of a dying init: wait for its zombie
        try:
            outcome = exec_outcome(container.pid)
        except ProcessLookupError:
            return  # reaped already (by the host's init, after a detached create): unknown
        comm, status = outcome
        if comm != INIT_COMM:
            return  # the user's process runs (or ran)
        if status is not None:
            break
        if time.monotonic() > deadline:
            return
        time.sleep(0.001)
    how = "exited"
    if status & 0x7F:
        how = f"was killed by signal {status & 0x7F}"
    elif status:
        how = f"exited with status {status >> 8}"
    raise SlrError(f"container init {how} before executing process.args: the runtime's setup failed "
                   "(a seccomp profile that denies the system calls slr makes before execve does this)")


def mark_started(container, spec=None):
    """The process was handed over: record it (no fifo: running) and run poststart hooks."""
    os.unlink(container.fifo)
    record_started(container, spec)


def record_started(container, spec=None):
    """mark_started once the fifo is gone (status() says "running" from then on): the
    state file, then poststart hooks. (A pool writes the file after its answer.)"""
    container.record.status = transitions.TRANSITIONS["start"]["created"]
    container.save()
    spec = spec or saved_spec(container)
    if spec.hooks.get("poststart"):
        hooks.run(spec.hooks, "poststart", container.oci_state("running"), warn_only=True, log=_log())


def _log():
    from slruntime import log

    return log.get()


def kill(container, signal, all_processes=False):
    status = transitions.check("kill", container)
    if container.pid <= 0:  # kill(2) would signal our own process group (0) or every process (-1)
        raise transitions.refusal("kill", status, container.id)
    cgroup = container.cgroup()
    if all_processes and cgroup is not None:
        cgroup.kill_all(signal)
        if status == "paused" and signal == SIGKILL:
            cgroup.freeze(False)
        return
    try:
        os.kill(container.pid, signal)
    except ProcessLookupError:
        raise transitions.refusal("kill", "stopped", container.id) from None


def destroy(container, spec=None):
    """Kill whatever is left, remove the cgroup, run poststop hooks, forget the container."""
    cgroup = container.cgroup()
    pid = container.pid
    if pid and container.init_alive():
        try:
            os.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass
    if cgroup is not None:
        cgroup.kill_all(SIGKILL)
        if cgroup.is_frozen():
            cgroup.freeze(False)
    if pid:
        wait_gone(pid, container.record.init_start_time)
    if cgroup is not None:
        cgroup.destroy()
    if os.path.isdir(os.path.join(container.dir, SHARED_ROOT)):
        from slruntime import rootfs

        rootfs.release_shared(container.dir)
    if spec is None:
        try:
            spec = saved_spec(container)
        except (OSError, ValueError, SlrError):
            spec = None
    if spec is not None and spec.hooks.get("poststop") and container.record.status != "creating":
        hooks.run(spec.hooks, "poststop", container.oci_state("stopped"), warn_only=True, log=_log())
    container.remove()


def wait_gone(pid, start_time, timeout=10.0):
    """Wait until `pid` (as recorded with its start time) no longer runs; reaps it
    when it is our child (e.g. `slr run`, which is the init's subreaper)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        current = process_start_time(pid)
        if current is None:  # gone, or a zombie: our child if the init died during create
            _reap_if_child(pid)
            return
        if current != start_time or start_time is None:
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if time.monotonic() > deadline:
            raise SlrError(f"process {pid} did not exit after SIGKILL")
        time.sleep(0.002)


def _reap_if_child(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# How long `delete --force` lets a `create` in progress (another slr) finish before it
# forgets the container under it: a create stuck in a hook is not waited for forever.
_CREATE_GRACE_SECONDS = 10


def delete(container, force=False):
    status = transitions.check("delete --force" if force else "delete", container)
    if status == "creating":
        container = _after_create(container)
        if container is None:
            return  # the create failed and removed what it made
    destroy(container)


def _after_create(container):
    """The container once its create is over (created, or gone: None). Forgotten while
    its create still runs, a second create of the id ran beside the first, and a cgroup
    directory one of them made was removed by neither (found by the CLI fuzzer)."""
    import time

    from slruntime.errors import ContainerNotFound

    deadline = time.monotonic() + _CREATE_GRACE_SECONDS
    while container.status() == "creating" and time.monotonic() < deadline:
        time.sleep(0.01)
        try:
            container = Container.load(container.root, container.id)
        except ContainerNotFound:
            return None
    return container


def wait_exit_code(pid):
    """Wait for our child (or adopted orphan) `pid`; reap any other orphan on the way.
    Returns the exit code the way a shell reports it (128+N for signal N)."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if reaped == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def run(root, container_id, bundle, options):
    """create + start; in the foreground, wait and delete (unless options.keep: the
    container then stays, stopped, until `delete`, as runc's --keep), returning the exit
    code."""
    detach = options.detach
    options.subreaper = not detach
    spec = load_for_create(bundle)
    proxy = None
    if not detach and not options.console_socket and spec.process.terminal:
        proxy = _foreground_terminal(options)
    container = create(root, container_id, bundle, options, spec)
    started = False
    try:
        if proxy is not None:
            proxy.accept_console()
        if not detach:
            signals.forward_signals(container.pid)
        start(container, spec)
        started = True
        if detach:
            return 0
        if proxy is not None:
            proxy.copy_until_exit(container.pid)
        code = wait_exit_code(container.pid)
        if options.keep:
            container.record.status = "stopped"
            container.save()
        return code
    finally:
        # A container whose process never started is removed even with --keep: a failed
        # run leaves nothing behind.
        if not detach and not (started and options.keep):
            destroy(container, spec)
        if proxy is not None:
            proxy.close()


def _foreground_terminal(options):
    """A pty proxy, for process.terminal when nobody gave a console socket."""
    from slruntime.terminal import ConsoleProxy, caller_window_size

    proxy = ConsoleProxy()
    options.console_socket = proxy.socket_path
    options.console_size = caller_window_size()
    return proxy
