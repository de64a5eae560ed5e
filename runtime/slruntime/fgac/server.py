"""The FGAC server: one epoll loop over the listening socket, the clients still
sending a container process state, the seccomp notify descriptors of every
registered container, and the result pipes of running helpers.

The loop itself never blocks and never touches a container's filesystem: each
notification is handled by a forked helper (helper.py) and answered when the helper
reports. A container can have at most MAX_HELPERS_PER_CONTAINER notifications in
flight; beyond that its descriptor is not read until one finishes, so a container
that floods mount(2) slows down only itself.
"""

import errno
import os
import select
import signal
import socket
import stat
import struct
import time

from slruntime import jsonlite, libc
from slruntime.errors import SlrError
from slruntime.fgac import handshake, helper, notify, target
from slruntime.fgac import policy as policy_module

CLIENT_TIMEOUT = 5.0
HELPER_TIMEOUT = 10.0
MAX_HELPERS_PER_CONTAINER = 4
_READ = select.EPOLLIN
_GONE = select.EPOLLHUP | select.EPOLLERR


class Server:
    def __init__(self, socket_path, policy, policy_path, log, socket_mode=0o600, socket_gid=-1):
        self.policy, self.policy_path, self.log = policy, policy_path, log
        self.socket_path = socket_path
        self.names = notify.SyscallNames()
        self.epoll = select.epoll()
        self.handlers = {}  # fd -> object with on_event(events)
        self.timed = set()  # clients and helpers that have a deadline
        self.containers = set()
        self.closed_this_round = set()
        self.signals = []
        self.listener, self.socket_inode = _listen(socket_path, socket_mode, socket_gid)
        self.watch(self.listener.fileno(), self)
        wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.watch(wake_r, _Wakeup(wake_r))

    # ------------------------------------------------------------ loop

    def serve_forever(self):
        """Run until SIGTERM or SIGINT; SIGHUP reloads the policy."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda signum, frame: self.signals.append(signum))
        signal.set_wakeup_fd(self.wake_w)
        self.log.write("listening", socket=self.socket_path, policy=self.policy_path, pid=os.getpid())
        try:
            while True:
                for signum in self.signals:
                    if signum == signal.SIGHUP:
                        self.reload_policy()
                    else:
                        return
                self.signals.clear()
                self.closed_this_round.clear()
                for fd, events in self.epoll.poll(self._poll_timeout()):
                    # A descriptor closed earlier in this batch may already be
                    # reused: its events belong to the old owner.
                    if fd not in self.closed_this_round and fd in self.handlers:
                        self.handlers[fd].on_event(self, events)
                now = time.monotonic()
                for item in [t for t in self.timed if t.deadline <= now]:
                    item.expire(self)
        finally:
            signal.set_wakeup_fd(-1)
            self.close()

    def close(self):
        try:
            if os.stat(self.socket_path).st_ino == self.socket_inode:
                os.unlink(self.socket_path)
        except OSError:
            pass
        self.listener.close()
        self.epoll.close()
        self.log.write("stopped", containers=len(self.containers))

    def _poll_timeout(self):
        if not self.timed:
            return -1
        return max(0.0, min(t.deadline for t in self.timed) - time.monotonic())

    def watch(self, fd, handler, events=_READ):
        self.handlers[fd] = handler
        self.epoll.register(fd, events)

    def unwatch(self, fd):
        del self.handlers[fd]
        self.epoll.unregister(fd)
        self.closed_this_round.add(fd)

    # ------------------------------------------------------------ events

    def on_event(self, _server, _events):
        """The listening socket: accept every waiting client."""
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: keep serving the others
                self.log.write("accept_failed", reason=exc.strerror)
                return
            conn.setblocking(False)
            peer_pid, peer_uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            client = _Client(conn, peer_pid, peer_uid)
            self.timed.add(client)
            self.watch(conn.fileno(), client)

    def register_container(self, message, seccomp_fd, identity, peer_pid, peer_uid):
        container = _Container(self, message, seccomp_fd, identity, peer_pid, peer_uid)
        self.containers.add(container)
        self.watch(seccomp_fd, container)
        self.log.write(
            "register",
            container=container.id,
            bundle=container.state["bundle"],
            pid=message["pid"],
            peer_pid=peer_pid,
            peer_uid=peer_uid,
            policy=container.rules.blocks if container.rules else None,
        )

    def reload_policy(self):
        try:
            new_policy = policy_module.load(self.policy_path)
        except SlrError as exc:
            self.log.write("reload_failed", reason=str(exc))
            return
        self.policy = new_policy
        for container in self.containers:
            container.select_rules(self)
        self.log.write("reloaded", policy=self.policy_path, containers=len(self.containers))


class _Wakeup:
    """Self-pipe for signals: its only job is to end epoll.poll."""

    def __init__(self, fd):
        self.fd = fd

    def on_event(self, _server, _events):
        try:
            os.read(self.fd, 256)
        except BlockingIOError:
            pass


class _Client:
    """A runtime sending one container process state; dropped on anything else."""

    def __init__(self, conn, peer_pid, peer_uid):
        self.conn, self.peer_pid, self.peer_uid = conn, peer_pid, peer_uid
        self.payload, self.fds = bytearray(), []
        self.deadline = time.monotonic() + CLIENT_TIMEOUT

    def on_event(self, server, _events):
        try:
            data, ancillary, flags, _ = self.conn.recvmsg(
                handshake.MAX_MESSAGE, socket.CMSG_SPACE(handshake.MAX_FDS * 4)
            )
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self.drop(server, f"receive failed: {exc.strerror}")
        for level, kind, cdata in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                usable = len(cdata) - len(cdata) % 4
                self.fds.extend(struct.unpack(f"{usable // 4}i", cdata[:usable]))
        if flags & socket.MSG_CTRUNC:
            return self.drop(server, "too many descriptors")
        self.payload += data
        if len(self.payload) > handshake.MAX_MESSAGE:
            return self.drop(server, "message too large")
        # The runtime closes the connection after its one message; a complete JSON
        # object is accepted at once all the same, so a runtime that keeps the
        # socket open until it execs does not delay its container.
        if not data or self.payload.rstrip().endswith(b"}") and _is_json(self.payload):
            self.finish(server)

    def finish(self, server):
        if not self.payload and not self.fds:
            return self.drop(server, "closed without sending anything")
        try:
            message, seccomp_fd = handshake.parse(bytes(self.payload), self.fds)
            identity = target.container_identity(message["pid"])
        except (handshake.HandshakeError, target.NotAContainer) as exc:
            return self.drop(server, str(exc))
        self.fds.remove(seccomp_fd)
        self.close(server)
        server.register_container(message, seccomp_fd, identity, self.peer_pid, self.peer_uid)

    def expire(self, server):
        self.drop(server, "no complete message in time")

    def drop(self, server, reason):
        self.close(server)
        server.log.write("client_dropped", reason=reason, peer_pid=self.peer_pid, peer_uid=self.peer_uid)

    def close(self, server):
        server.timed.discard(self)
        server.unwatch(self.conn.fileno())
        self.conn.close()
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def _is_json(payload):
    try:
        jsonlite.loads(bytes(payload))
    except (jsonlite.JSONError, UnicodeDecodeError):
        return False
    return True


class _Container:
    """One seccomp notify descriptor and the rules that apply to its notifications."""

    def __init__(self, server, message, fd, identity, peer_pid, peer_uid):
        self.fd, self.state, self.metadata = fd, message["state"], message.get("metadata")
        self.identity = identity  # target.namespace_ids of its threads
        self.id = self.state["id"]
        self.peer_pid, self.peer_uid = peer_pid, peer_uid
        self.helpers, self.closing = 0, False
        self.select_rules(server)

    def select_rules(self, server):
        self.rules = server.policy.rules_for(self.state, self.metadata, self.peer_uid)

    def on_event(self, server, events):
        if events & _READ:
            self.receive(server)
        elif events & _GONE:  # no process uses the filter any more
            server.unwatch(self.fd)
            server.containers.discard(self)
            server.log.write("unregister", container=self.id)
            self.closing = True
            self.close_if_idle()

    def receive(self, server):
        try:
            notif = notify.receive(self.fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # ENOENT: the caller was killed meanwhile
                server.log.write("receive_failed", container=self.id, reason=exc.strerror)
            return
        syscall = server.names.name(notif.arch, notif.nr)
        if self.rules is None:
            return self.deny(server, notif, syscall, "unknown container: no policy block selects it")
        if syscall not in helper.HANDLED:
            return self.deny(server, notif, syscall, "syscall not handled by the FGAC server")
        _Helper.spawn(server, self, notif, syscall)
        self.helpers += 1
        if self.helpers == MAX_HELPERS_PER_CONTAINER:
            server.epoll.modify(self.fd, 0)

    def deny(self, server, notif, syscall, reason):
        self.answer(server, notif, syscall, {"decision": "deny", "errno": errno.EPERM, "reason": reason})

    def answer(self, server, notif, syscall, outcome):
        # Logged before the answer: once the container sees the result, the record
        # of the decision already exists.
        syscall = syscall or f"{notif.arch:#x}:{notif.nr}"
        server.log.write("decision", container=self.id, pid=notif.pid, syscall=syscall, **outcome)
        try:
            notify.respond(self.fd, notif.id, outcome["errno"])
        except OSError as exc:
            if outcome["decision"] != "gone":
                server.log.write("answer_undelivered", container=self.id, pid=notif.pid, syscall=syscall,
                                 reason=exc.strerror)

    def helper_done(self, server):
        self.helpers -= 1
        if not self.closing and self.helpers == MAX_HELPERS_PER_CONTAINER - 1:
            server.epoll.modify(self.fd, _READ)
        self.close_if_idle()

    def close_if_idle(self):
        # Helpers still answer through this descriptor: close it after the last one.
        if self.closing and self.helpers == 0 and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Helper:
    """A forked process handling one notification; reports its outcome as JSON
    through a pipe and exits."""

    def __init__(self, pid, pipe_fd, container, notif, syscall):
        self.pid, self.fd, self.container = pid, pipe_fd, container
        self.notif, self.syscall = notif, syscall
        self.output = bytearray()
        self.deadline = time.monotonic() + HELPER_TIMEOUT
        self.timed_out = False

    @classmethod
    def spawn(cls, server, container, notif, syscall):
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            _helper_main(parent, container.fd, write_fd, notif, syscall, container.rules, container.identity)
        os.close(write_fd)
        item = cls(pid, read_fd, container, notif, syscall)
        server.timed.add(item)
        server.watch(read_fd, item)

    def on_event(self, server, _events):
        data = os.read(self.fd, 65536)
        if data:
            self.output += data
            return
        server.unwatch(self.fd)
        server.timed.discard(self)
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        try:
            outcome = jsonlite.loads(bytes(self.output))
        except (jsonlite.JSONError, UnicodeDecodeError):
            why = "timed out" if self.timed_out else f"died (wait status {status})"
            outcome = {"decision": "error", "errno": errno.EIO, "reason": f"helper {why}"}
        if self.container.fd >= 0:
            self.container.answer(server, self.notif, self.syscall, outcome)
        self.container.helper_done(server)

    def expire(self, server):
        # The result pipe closes when the helper dies; on_event answers then.
        server.timed.discard(self)
        self.timed_out = True
        os.kill(self.pid, signal.SIGKILL)


def _helper_main(parent, notify_fd, write_fd, notif, syscall, rules, identity):
    """Child side of _Helper.spawn; never returns."""
    try:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        # A helper must not outlive the server: it holds a notify descriptor, and
        # containers only get ENOSYS once every copy of it is closed.
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        _close_all_but(notify_fd, write_fd)
        outcome = helper.handle(notify_fd, notif, syscall, rules, identity)
    except BaseException as exc:  # report anything rather than die silently
        outcome = {"decision": "error", "errno": errno.EIO, "reason": f"helper failed: {exc!r}"}
    try:
        os.write(write_fd, jsonlite.dumps(outcome).encode("utf-8", "surrogateescape"))
    finally:
        os._exit(0)


def _close_all_but(*keep):
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _listen(path, mode, gid):
    """Bind the server socket at `path` with `mode`, replacing a stale socket but
    never a live server's or a file that is not a socket."""
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if not stat.S_ISSOCK(existing.st_mode):
            raise SlrError(f"--socket {path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(path)
            raise SlrError(f"--socket {path}: another server is listening")
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    old_umask = os.umask(0o777)  # nobody can connect before the mode below is set
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise SlrError(f"--socket {path}: {exc.strerror}") from None
    finally:
        os.umask(old_umask)
    if gid >= 0:
        os.chown(path, -1, gid)
    os.chmod(path, mode)
    sock.listen(64)
    return sock, os.stat(path).st_ino
