"""The container process: terminal, user, rlimits, scheduling, capabilities, then exec.

The steps process_setup puts in order for the init, `exec` processes and pool members,
called in the container with every module they need already imported: after
pivot_root the host's files are gone. The order follows runc's: the process is
finalised (finalize) before create reports success; no_new_privs before seccomp,
seccomp last (loaded after start, before the startContainer hooks), and every
descriptor but stdio and --preserve-fds closed on exec.
"""

import errno
import fcntl
import os
import stat
import sys

from slruntime import capabilities, config, files, libc, lsm, signals
from slruntime.errors import SlrError

# asm-generic ioctl numbers (x86, arm, riscv), here rather than loading termios' extension
# module into every container start for the two of them a terminal needs.
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
IOPRIO_WHO_PROCESS = 1


def _c_int(value):
    return value.to_bytes(4, sys.byteorder, signed=True)  # without loading `struct` for it


def find_executable(name, env, cwd):
    """Resolve process.args[0] with the container's PATH, as execvp would; fails
    before start (as runc does) so a typo is a create error, not a dead container.
    Returns the program itself, never its "#!" interpreter: execve reads that line and
    builds the interpreter's argv (interpreter, its argument, the script, args[1:])."""
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(cwd, name)
        if not os.path.exists(path):
            raise SlrError(f'exec: "{name}": no such file or directory')
    else:
        path = _search_path(name, env)
    refuse_runtime_binary(path, cwd, f'exec: "{name}"')
    return path


def _search_path(name, env):
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for entry in env:
        if entry.startswith("PATH="):
            search = entry[5:]
    for directory in search.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SlrError(f'exec: "{name}": executable file not found in $PATH')


_BINPRM_BUF_SIZE = 256  # what the kernel reads of a file to find its "#!" line
_BINPRM_MAX_RECURSION = 4  # interpreters of interpreters the kernel follows


def refuse_runtime_binary(path, cwd, what):
    """Refuse a program, or a "#!" interpreter of it, reached through a /proc magic link
    (/proc/self/exe, /proc/1/exe, /proc/self/fd/N...): until its execve this process IS
    the runtime, so such a link is the host's Python interpreter, and a container that
    gets it running holds a descriptor to the host's binary, to overwrite once nothing
    executes it (CVE-2019-5736). runc and crun re-execute themselves from a sealed
    copy instead; an interpreter cannot cheaply, so this checks what execve would run.
    (It does not stop a process already running in the container from rewriting the
    file between this check and the execve.) `what` starts the error; `path` itself is
    what the caller runs."""
    for _ in range(_BINPRM_MAX_RECURSION + 1):  # the program, then its interpreters
        try:
            fd = libc.openat2(libc.AT_FDCWD, path, os.O_PATH, libc.RESOLVE_NO_MAGICLINKS)
        except OSError as exc:
            if exc.errno == errno.ELOOP and os.path.exists(path):  # a magic link, not a loop
                raise SlrError(f"{what}: {path} leads through a /proc magic link, "
                               "which would run the runtime's own binary") from None
            return  # gone: execve reports it (and runs nothing of ours)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        if not regular:
            return  # execve refuses it; and opening a FIFO or a device to read could block or act
        try:
            fd = libc.openat2(libc.AT_FDCWD, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY, libc.RESOLVE_NO_MAGICLINKS)
        except OSError:
            return  # unreadable: nothing to inspect
        try:
            head = os.read(fd, _BINPRM_BUF_SIZE)
        except OSError:
            head = b""
        finally:
            os.close(fd)
        if not head.startswith(b"#!"):
            return
        interpreter = head[2:].split(b"\n", 1)[0].replace(b"\t", b" ").strip().split(b" ", 1)[0]
        if not interpreter:
            return
        path = os.path.join(cwd, os.fsdecode(interpreter))  # as execve: relative to the cwd


def open_pty(console_size):
    """A new pty from the container's devpts; returns (master, slave) descriptors."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, TIOCSPTLCK, _c_int(0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        raise SlrError(f"terminal: cannot allocate a pty in the container: {exc.strerror}") from None
    if console_size:
        rows, cols = console_size
        fcntl.ioctl(slave, TIOCSWINSZ, b"".join(v.to_bytes(2, sys.byteorder) for v in (rows, cols, 0, 0)))
    return master, slave


def send_console(sock, master):
    """Hand the pty master to whoever listens on --console-socket (runc's protocol)."""
    import _socket

    try:
        sock.sendmsg([b"/dev/ptmx"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _c_int(master))])
    except OSError as exc:
        raise SlrError(f"terminal: sending the pty to the console socket: {exc.strerror}") from None
    finally:
        sock.close()
        os.close(master)


def become_terminal(slave):
    leave_callers_session()
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def leave_callers_session():
    """Start a session of our own, without a controlling terminal, as runc's init does
    for every container process. Otherwise a process run from a terminal (`slr run` in
    the foreground, `slr exec` without --tty, `slr create` from a shell) keeps the
    caller's: it opens /dev/tty, reads what the operator types and, with TIOCSTI, queues
    commands that the operator's shell runs once slr returns. (Already a session leader:
    a pool member got its own session at create, before its pty.)"""
    if os.getsid(0) != os.getpid():
        os.setsid()


def leave_callers_keyring():
    """A new session keyring, as runc gives every container process (unless
    --no-new-keyring): keys are not namespaced, and the caller's session keyring (the
    root's, or a service's) is possessed by whoever inherits it, user namespace or not,
    so the container could read every key in it (disk encryption, NFS, Kerberos...).
    A kernel without keys (CONFIG_KEYS=n, common on boards) has nothing to hide."""
    try:
        libc.join_new_session_keyring()
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise SlrError(f"session keyring: {os.strerror(exc.errno)}") from None


def connect_unix(path, what):
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise SlrError(f"{what} {path}: {exc.strerror}") from None
    return sock


def set_cpu_affinity(cpus):
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            raise SlrError(f"execCPUAffinity: {exc.strerror}") from None


def apply_scheduling(proc):
    if proc.scheduler:
        s = proc.scheduler
        try:
            libc.sched_setattr(0, s.policy, s.flags, s.nice, s.priority, s.runtime, s.deadline, s.period)
        except OSError as exc:
            raise SlrError(f"process.scheduler: {exc.strerror}") from None
    if proc.io_priority:
        klass, level = proc.io_priority
        try:
            libc.ioprio_set(IOPRIO_WHO_PROCESS, 0, (klass << 13) | level)
        except OSError as exc:
            raise SlrError(f"process.ioPriority: {exc.strerror}") from None


def set_rlimits(rlimits):
    for resource, soft, hard in rlimits:
        try:
            libc.setrlimit(resource, soft, hard)
        except OSError as exc:
            from slruntime.spec import RLIMITS

            name = next((n for n, number in RLIMITS.items() if number == resource), str(resource))
            raise SlrError(f"process.rlimits: {name} {soft}/{hard}: {os.strerror(exc.errno)}") from None


def change_user(proc, setgroups_allowed):
    try:
        if setgroups_allowed:
            os.setgroups(proc.additional_gids)
        elif proc.additional_gids:
            raise SlrError("process.user.additionalGids: setgroups is denied in this user namespace")
        os.setresgid(proc.gid, proc.gid, proc.gid)
        os.setresuid(proc.uid, proc.uid, proc.uid)
    except OSError as exc:
        raise SlrError(f"process.user: cannot become {proc.uid}:{proc.gid}: {exc.strerror}") from None


def setgroups_allowed(pid="self"):
    """Whether setgroups(2) is allowed in the user namespace of `pid`. Read through the
    host's /proc (before pivot_root or setns): the container's /proc may be anything,
    and a fake "deny" would skip setgroups, leaving the caller's groups to the container."""
    try:
        return files.read(f"/proc/{pid}/setgroups").strip() != b"deny"
    except OSError:
        return True


def finalize(proc, seccomp_filter, listener, state_for_listener, allow_setgroups, lsm_attrs, new_session_keyring,
             housekeeping_pinned):
    """Make this process the container's process as far as anything can fail: its own
    session, scheduling, umask, capabilities, user, cwd, no_new_privs, CPU affinity, LSM
    labels. The init calls it before `create` reports success, as runc and crun do, so a
    config the host cannot grant fails create with its reason; what runs after it
    (startContainer hooks, a pool's request) runs as the container's process. Without
    no_new_privs the seccomp filter is loaded here (that needs CAP_SYS_ADMIN, which the capabilities may drop).
    Returns the filter still to load (load_seccomp, as late as possible), or None."""
    signals.reset_for_exec()  # before the filter is loaded: it may deny rt_sigaction
    leave_callers_session()
    if new_session_keyring:  # before the filter too: profiles commonly deny keyctl
        leave_callers_keyring()
    apply_scheduling(proc)
    if proc.umask is not None:
        os.umask(proc.umask)
    # The cwd first, as root (as runc does: a cwd only root can enter is still the
    # process's; one root is refused is tried again as the container's user), so its
    # getcwd check runs before a seccomp filter can deny that call.
    in_cwd = enter_cwd(proc.cwd, permission_denied_ok=True)
    if seccomp_filter is not None and not proc.no_new_privileges:
        load_seccomp(seccomp_filter, listener, state_for_listener)
        seccomp_filter = None
    caps = proc.capabilities
    if caps is not None:
        capabilities.drop_bounding(caps)
        libc.prctl(libc.PR_SET_KEEPCAPS, 1)
    change_user(proc, allow_setgroups)
    if caps is not None:
        capabilities.apply(caps)
        libc.prctl(libc.PR_SET_KEEPCAPS, 0)
    if not in_cwd:
        enter_cwd(proc.cwd)
    if proc.no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    if proc.exec_cpu_affinity and proc.exec_cpu_affinity[1]:
        set_cpu_affinity(proc.exec_cpu_affinity[1])
    elif housekeeping_pinned:
        config.release_housekeeping()
    lsm.apply_exec_attrs(lsm_attrs)
    return seccomp_filter


def enter_cwd(cwd, permission_denied_ok=False):
    """chdir, refusing a directory outside the root. Returns False, without an error,
    when permission_denied_ok and the directory is not ours to enter."""
    try:
        os.chdir(cwd)
    except OSError as exc:
        if permission_denied_ok and isinstance(exc, PermissionError):
            return False
        raise SlrError(f"process.cwd {cwd}: {exc.strerror}") from None
    try:  # CVE-2024-21626 class: glibc's getcwd fails with ENOENT for "(unreachable)/..."
        inside = os.getcwd().startswith("/")
    except FileNotFoundError:
        inside = False
    except OSError as exc:
        raise SlrError(f"process.cwd {cwd}: cannot check where it leads: {exc.strerror}") from None
    if not inside:
        raise SlrError(f"process.cwd {cwd} is outside the container")
    return True


def exec_process(proc, executable, preserve_fds):
    """execve the container's program with every descriptor but stdio and the
    --preserve-fds closed; does not return."""
    libc.close_range_cloexec(3 + preserve_fds)
    env = dict(e.split("=", 1) for e in proc.env)
    try:
        os.execve(executable, proc.args, env)
    except OSError as exc:
        raise SlrError(f'exec: "{proc.args[0]}": {exc.strerror}') from None


def load_seccomp(seccomp_filter, listener, state):
    """Install the filter (None: nothing to do) and hand its listener the notify fd."""
    if seccomp_filter is None:
        return
    from slruntime import seccomp  # loaded already (it built the filter): no file is read here

    notify_fd = seccomp.load(seccomp_filter)
    if listener is not None:
        if notify_fd is None:
            raise SlrError("seccomp: listenerPath is set, but no rule has the SCMP_ACT_NOTIFY action")
        sock, metadata = listener
        seccomp.send_to_listener(sock, notify_fd, state, metadata)
        sock.close()
