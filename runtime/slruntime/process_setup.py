"""One setup path for every container process: the container's init (`create`), an
`exec` process and a pool member's process (runc's finalizeNamespace, shared by its
standard and setns inits; youki's one init path for init and tenant containers).

The callers differ only in how they get into the container (the init builds the
rootfs and pivots, an exec process joins the init's namespaces) and in what they wait
for; the steps around that are these, in this order:

    prepare_seccomp        before any namespace: the filter from the state root's cache
    ProcessSetup(...)      non-dumpable until execve
    .open_host_handles     console socket, seccomp listener, LSM attribute files, whether
                           setgroups is allowed: all read through the host's view
      -- pivot_root (init) / setns into the mount namespace (exec) --
    forbid_imports         from here on an import would read the container's files
    .become_process        still root, in the container: the program looked up, the
                           terminal, rlimits
    .finalize              the container's process: session, keyring, scheduling,
                           umask, capabilities, user, cwd, no_new_privs, CPUs, LSM labels
      -- the init: `created`, then waits for start (or the pool's request) --
    .load_seccomp          what remains of the filter, as late as possible
      -- the init: startContainer hooks --
    .exec                  execve

Everything a step after the pivot needs is imported before it (forbid_imports makes
that a rule: runtime/tests/test_post_pivot_imports.py).
"""

import sys

from slruntime import libc, process


def prepare_seccomp(lx, state_root):
    """The filter program, prepared (not loaded) before waiting for the runtime's go:
    from the state root's cache, or compiled (importing pyseccomp and adding hundreds of
    rules take milliseconds, which then overlap with the runtime putting the process in
    its cgroup, a write that waits for an RCU grace period). Before any namespace is
    entered: in the container's mount namespace the cache's path would name a file the
    image can provide."""
    if not lx.seccomp:
        return None
    from slruntime import seccomp

    return seccomp.prepare(lx.seccomp, state_root, lx.seccomp_floor)


def run_on_initial_cpus(proc):
    """execCPUAffinity.initial: the CPUs the setup runs on until finalize moves the
    process to its final ones."""
    if proc.exec_cpu_affinity:
        process.set_cpu_affinity(proc.exec_cpu_affinity[0])


class ProcessSetup:
    """What one container process takes along from the host to its execve."""

    __slots__ = ("args", "seccomp_filter", "listener", "console", "lsm_attrs", "allow_setgroups")

    def __init__(self, args, seccomp_filter):
        # Keep /proc/PID/exe, mem and fds of this interpreter out of the container's
        # reach until exec replaces it (the CVE-2019-5736 class); exec resets it.
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        self.args = args  # options.ProcessArgs
        self.seccomp_filter = seccomp_filter  # prepare_seccomp's; None once loaded
        self.listener = None  # (socket, metadata) of linux.seccomp.listenerPath
        self.console = None  # connected to --console-socket: the pty master goes there
        self.lsm_attrs = ()
        self.allow_setgroups = True

    def open_host_handles(self, proc, lx, wants_console):
        """Connect and open what lives on the host, while its paths still name the host's files."""
        if wants_console and self.args.console_socket:
            self.console = process.connect_unix(self.args.console_socket, "console socket")
        if lx.seccomp and lx.seccomp.listener_path:
            self.listener = (process.connect_unix(lx.seccomp.listener_path, "seccomp listener"),
                             lx.seccomp.listener_metadata)
        from slruntime import lsm

        self.lsm_attrs = lsm.open_exec_attrs(proc)
        # The parent read it (an exec process, which joins the init's user namespace),
        # else this process, in its own user namespace.
        allowed = self.args.allow_setgroups
        self.allow_setgroups = process.setgroups_allowed() if allowed is None else allowed

    def become_process(self, proc, find_program=True):
        """In the container, still as root (the check of the program, and of its "#!"
        interpreters, reads files the container's user may not): returns the program to
        execute (None without find_program: a pool member's comes with its request)."""
        executable = process.find_executable(proc.args[0], proc.env, proc.cwd) if find_program else None
        if self.console is not None:  # (send_console closes it)
            attach_terminal(proc.console_size or self.args.console_size,
                            lambda master: process.send_console(self.console, master))
        process.set_rlimits(proc.rlimits)
        return executable

    def finalize(self, proc, state_for_listener):
        """process.finalize: whatever the host cannot grant fails here, before the
        caller reports the process ready."""
        args = self.args
        self.seccomp_filter = process.finalize(proc, self.seccomp_filter, self.listener, state_for_listener,
                                               self.allow_setgroups, self.lsm_attrs, args.new_session_keyring,
                                               args.housekeeping_pinned)

    def load_seccomp(self, state_for_listener):
        """What remains of the seccomp filter (as late as possible: the init's
        startContainer hooks run under it)."""
        process.load_seccomp(self.seccomp_filter, self.listener, state_for_listener)
        self.seccomp_filter = None

    def exec(self, proc, executable):
        """execve, every descriptor but stdio and --preserve-fds closed; does not return."""
        process.exec_process(proc, executable, self.args.preserve_fds)


def attach_terminal(console_size, hand_over_master):
    """A pty from the container's devpts as the process's controlling terminal and
    stdio; `hand_over_master(master)` sends the master to whoever holds the other end
    (a console socket, a pool's client) and closes it."""
    master, slave = process.open_pty(console_size)
    hand_over_master(master)
    process.become_terminal(slave)


class _ImportsForbidden:
    """A meta path finder ahead of all others: an import of a module not loaded yet
    fails instead of searching sys.path, which after pivot_root (or setns into the
    container's mount namespace) names the container's files: at best the module is
    missing (the venv's slr fails, the frozen one does not), at worst the image
    provides it and it runs as the runtime, before the process is confined."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        raise ImportError(f"{name} imported in the container (after pivot_root): "
                          "import it before the process leaves the host's view", name=name)


def forbid_imports():
    sys.meta_path.insert(0, _ImportsForbidden)
