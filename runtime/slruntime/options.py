"""What a command asks of the container layer, and what the runtime hands the process it
forks: typed records (runc's CreateOpts/Process, youki's process/args.rs), built where
the command line is read and passed unchanged across module lines and the fork.

Plain classes with __slots__: a misspelt field is an AttributeError, not a silently
missing key, and they cost no import on the start path (no dataclasses, no typing).
"""


class CreateOptions:
    """`slr create` / `slr run` (and a pool manager creating a member), beyond the bundle."""

    __slots__ = ("pid_file", "console_socket", "console_size", "preserve_fds", "no_pivot", "no_new_keyring",
                 "detach", "keep", "subreaper", "pool", "pool_fd", "housekeeping_pinned")

    def __init__(self, pid_file=None, console_socket=None, preserve_fds=0, no_pivot=False, no_new_keyring=False,
                 detach=False, keep=False, pool=None, pool_fd=None, housekeeping_pinned=False):
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.console_size = None  # (rows, columns) of the caller's terminal, for `run`'s own console
        self.preserve_fds = preserve_fds
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.detach = detach
        self.keep = keep  # `run`: the container stays, stopped, until `delete` (runc's --keep)
        self.subreaper = False  # `run` in the foreground reaps the container's orphans
        self.pool = pool  # the pool's name, for a pool's member
        self.pool_fd = pool_fd  # the member's end of its socket to the pool manager
        self.housekeeping_pinned = housekeeping_pinned  # see config.pin_to_housekeeping


class ExecOptions:
    """`slr exec`: the process to run (-p process.json, or the command line on top of
    the container's process) and how to run it."""

    __slots__ = ("args", "process_file", "tty", "env", "cwd", "user", "additional_gids", "cap", "no_new_privs",
                 "apparmor", "process_label", "cgroup", "console_socket", "detach", "pid_file", "preserve_fds",
                 "ignore_paused", "housekeeping_pinned")

    def __init__(self, args=(), process_file=None, tty=False, env=(), cwd=None, user=None, additional_gids=(), cap=(),
                 no_new_privs=False, apparmor=None, process_label=None, cgroup=None, console_socket=None, detach=False,
                 pid_file=None, preserve_fds=0, ignore_paused=False, housekeeping_pinned=False):
        self.args = list(args)
        self.process_file = process_file
        self.tty = tty
        self.env = list(env)
        self.cwd = cwd
        self.user = user  # "UID[:GID]"
        self.additional_gids = list(additional_gids)
        self.cap = list(cap)
        self.no_new_privs = no_new_privs
        self.apparmor = apparmor
        self.process_label = process_label
        self.cgroup = cgroup  # refused: the process joins the container's cgroup
        self.console_socket = console_socket
        self.detach = detach
        self.pid_file = pid_file
        self.preserve_fds = preserve_fds
        self.ignore_paused = ignore_paused  # exec in a paused container too (runc's --ignore-paused)
        self.housekeeping_pinned = housekeeping_pinned


class ProcessArgs:
    """What the runtime hands the child it forks to become a container process: the
    container's init (create) or an `exec` process (youki's ContainerArgs, for init and
    tenant containers alike). Descriptors are numbers valid in the child."""

    __slots__ = ("state_root", "console_socket", "console_size", "preserve_fds", "new_session_keyring",
                 "housekeeping_pinned", "no_pivot", "shared_root", "fifo_fd", "error_fd", "pool_fd",
                 "allow_setgroups")

    def __init__(self, state_root, console_socket=None, console_size=None, preserve_fds=0, new_session_keyring=True,
                 housekeeping_pinned=False):
        self.state_root = state_root  # its seccomp cache is read before the container's mounts hide it
        self.console_socket = console_socket
        self.console_size = console_size  # when process.consoleSize does not say
        self.preserve_fds = preserve_fds
        self.new_session_keyring = new_session_keyring
        # The runtime runs on the housekeeping CPUs (slr.conf): the process leaves them.
        self.housekeeping_pinned = housekeeping_pinned
        # The init only:
        self.no_pivot = False
        self.shared_root = None  # the root built in the runtime's mount namespace (no mount namespace)
        self.fifo_fd = None  # O_PATH descriptor of exec.fifo
        self.error_fd = None  # init.error, where a failure after `create` returned is written
        self.pool_fd = None  # a pool member: its process comes from the manager on this socket
        # Whether setgroups is allowed in the process's user namespace, read by the parent
        # for an exec process (process.setgroups_allowed); None: the init reads it itself.
        self.allow_setgroups = None
