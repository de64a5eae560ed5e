"""The pool manager: a resident process that keeps `size` containers of one bundle
created and hands each exactly one process.

  <root>/pools/<name>/pool.json   bundle, size, manager pid and start time
  <root>/pools/<name>/pool.sock   the client socket (SOCK_SEQPACKET, see PROTOCOL.md): 0600,
                                  or 0660 with --socket-group; peers checked (peer.py)
  <root>/pools/<name>/pool.log    what the manager did (tmpfs: the state root)

Members are ordinary containers named <name>-<n> (state "created" while ready), so
`slr list/state/kill` see them. The manager is their subreaper: it learns of every
exit and reports it to the client that started the process.

Replacements are created in forked children at a lower priority (REFILL_NICE), so
that a refill neither delays a hand-off nor competes for the CPUs with the process just
started; a member gets the manager's priority back when it becomes ready, before
anything can be handed to it, and a creation that a request waits for gets it at once.
"""

import os
import select
import stat
import time

import _signal
import _socket

from slruntime import container as lifecycle, jsonlite, libc
from slruntime.errors import SlrError
from slruntime.options import CreateOptions
from slruntime.pool import POOLS_DIR, peer as peermod, pool_dir, socket_path, valid_name, wire
from slruntime.state import Container, check_root, process_start_time

HANDOFF_TIMEOUT_MS = 10000
RETRY_DELAY = 1.0  # after a failed member creation, so a broken bundle does not spin
# How long after a hand-off the manager does no background work (refill while other
# members are ready, state file, log, deleting used members): a short process (the
# common case) exits and gets its answer without them beside it on the CPUs.
QUIET_AFTER_HANDOFF = 0.05
# The longest that work waits for a quiet moment: a steady stream of hand-offs must not
# pile up used containers (and their mount namespaces).
MAX_DEFERRAL = 0.5
# How much nicer than the manager the children creating members run. A
# nice-0 task gets ~90% of a CPU it shares with a nice-10 one (CFS weights 1024:110), and
# preempts it at wake-up; the refill still progresses on a busy machine.
REFILL_NICE = 10
CAP_SYS_NICE = 23
# A pool that never got a single container up (e.g. its cgroupsPath is fixed, so
# the second member finds the first's cgroup busy) stops instead of retrying forever.
MAX_FAILURES_BEFORE_READY = 3


class Member:
    __slots__ = ("id", "sock", "creator", "pid", "client", "container", "spec", "handed_at", "mount_ns")

    def __init__(self, member_id, sock, creator):
        self.id = member_id
        self.sock = sock
        self.creator = creator
        self.pid = None
        self.client = None
        # Loaded once the member is ready, so that a hand-off reads no file.
        self.container = None
        self.spec = None
        self.handed_at = None  # monotonic time of the hand-off
        # The container's mount namespace, held open while it is ours: when its process
        # exits, the kernel's teardown of its mounts (which waits for an RCU grace
        # period, ~1-2 ms here) is then not part of that exit, which the client waits
        # for; closing it after the answer (_destroy) does that work.
        self.mount_ns = None


class PoolManager:
    def __init__(self, root, name, bundle, size, log, allowed):
        self.root = root
        self.allowed = allowed  # peer.AllowList
        self.name = name
        self.bundle = bundle
        self.size = size
        self.log = log
        self.dir = pool_dir(root, name)
        self.members = {}
        self.ready = []  # member ids, oldest first
        self.sequence = 0
        self.retry_at = 0.0
        self.running = True
        self.clients = {}  # fd -> socket waiting for its request
        self.peers = {}  # fd -> its peer.Peer
        self.listener = None
        self.waiting = []  # (client, request, fds) that arrived while no member was ready
        # Work no answer waits for (state file, log, deleting used members), in order,
        # done when no client is waiting on the manager and no hand-off is recent (serve).
        self.later = []  # (monotonic time queued, callable)
        self.mount_namespaces = set()  # the members' Member.mount_ns still open
        self.failures = 0  # member creations failed in a row
        self.priority = os.getpriority(os.PRIO_PROCESS, 0)
        # Lower the children's priority only if the ready member can be given it back.
        self.refill_nice = REFILL_NICE if _has_capability(CAP_SYS_NICE) else 0

    # --- member lifecycle -----------------------------------------------------------

    def _fork_creator(self):
        """fork() for a creator: the child holds none of the manager's sockets (the
        new container's init must not either) and runs at the refill's priority,
        unless a request waits for it. It leads a process group of its own, so that
        the whole creation (it and the container's init it forks) can be given the
        manager's priority at once (_hurry)."""
        pid = os.fork()
        if pid == 0:
            if self.refill_nice:
                os.setpgid(0, 0)  # before it forks anything (the manager does it too)
            self.listener.close()
            for other in self.members.values():
                other.sock.close()
                if other.client is not None:
                    other.client.close()
            for client in list(self.clients.values()) + [w[0] for w in self.waiting]:
                client.close()
            for fd in self.mount_namespaces:  # members forgotten but not destroyed yet too
                os.close(fd)
            return 0
        if self.refill_nice:
            # Here rather than in the child: a later _hurry must find the group, and
            # must not be undone by a child that lowers its priority after it.
            try:
                os.setpgid(pid, pid)
                if not self.waiting:
                    os.setpriority(os.PRIO_PGRP, pid, self.priority + self.refill_nice)
            except ProcessLookupError:
                pass  # exited already
        return pid

    def _hurry(self):
        """A request waits for a member: the creations under way are no background
        work any more."""
        for member in self.members.values():
            if member.creator is not None and self.refill_nice:
                try:
                    os.setpriority(os.PRIO_PGRP, member.creator, self.priority)
                except ProcessLookupError:
                    pass  # finished meanwhile: ready ones get the priority back anyway

    def _spawn_member(self):
        self.sequence += 1
        member_id = f"{self.name}-{os.getpid()}-{self.sequence}"
        ours, theirs = wire.seqpacket_pair()
        creator = self._fork_creator()
        if creator == 0:
            ours.close()
            try:
                lifecycle.create(self.root, member_id, self.bundle,
                                 CreateOptions(pool_fd=theirs.fileno(), pool=self.name))
                os._exit(0)
            except SlrError as exc:
                self.log.error(f"member {member_id}: {exc}")
            except BaseException as exc:  # a forked child must never return into the loop
                self.log.error(f"member {member_id}: internal error: {exc!r}")
            os._exit(1)
        theirs.close()
        self.members[member_id] = Member(member_id, ours, creator)

    def _quiet_until(self):
        """Background work waits until then (monotonic): QUIET_AFTER_HANDOFF after the
        latest hand-off whose process still runs."""
        return max((m.handed_at + QUIET_AFTER_HANDOFF for m in self.members.values() if m.handed_at is not None),
                   default=0.0)

    def _defer(self, work):
        self.later.append((time.monotonic(), work))

    def _later_due(self):
        """When the deferred work may run: once quiet, or once the oldest has waited
        MAX_DEFERRAL."""
        return min(self._quiet_until(), self.later[0][0] + MAX_DEFERRAL)

    def _refill_at(self):
        """When the next refill may start: at once when nothing is ready or a request
        waits, else once quiet."""
        if not self.ready or self.waiting:
            return self.retry_at
        return max(self.retry_at, self._quiet_until())

    def _refill(self):
        if time.monotonic() < self._refill_at():
            return
        pending = sum(1 for m in self.members.values() if m.pid is None)
        while self.running and len(self.ready) + pending < self.size:
            self._spawn_member()
            pending += 1

    def _on_child_exit(self, pid, status):
        for member in list(self.members.values()):
            if member.creator == pid:
                member.creator = None
                if status == 0:
                    self._make_ready(member)
                else:
                    self.failures += 1
                    self.retry_at = time.monotonic() + RETRY_DELAY
                    self._forget(member)
                    if not self.ready and self.failures >= MAX_FAILURES_BEFORE_READY:
                        self.log.error(f"pool {self.name}: {self.failures} containers failed to start; giving up")
                        self.running = False
                return
            if member.pid == pid:
                code = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
                if member.client is not None:
                    self._reply(member.client, {"exit": code})
                    member.client.close()
                    member.client = None
                elif member.id in self.ready:
                    self.log.warning(f"member {member.id} died before use (status {code}); replacing it")
                self._forget(member)
                return

    def _make_ready(self, member):
        try:
            member.container = Container.load(self.root, member.id)
            member.spec = lifecycle.saved_spec(member.container)
            member.pid = member.container.pid
            member.mount_ns = _open_mount_namespace(member.pid)
            if member.mount_ns is not None:
                self.mount_namespaces.add(member.mount_ns)
            if self.refill_nice:
                os.setpriority(os.PRIO_PROCESS, member.pid, self.priority)
        except (OSError, SlrError) as exc:  # e.g. killed in the meantime (ESRCH)
            self.log.warning(f"member {member.id} is not usable ({exc}); replacing it")
            self._forget(member)
            return
        self.ready.append(member.id)
        self.failures = 0

    def _forget(self, member):
        """Delete the member's container (later: after the answers that wait); it is
        never reused. A member whose creator failed part-way was already cleaned up by
        create itself. (In the manager: deleting in a forked child, concurrently with the
        refill, made bursts of requests ~40% slower.)"""
        self.members.pop(member.id, None)
        if member.id in self.ready:
            self.ready.remove(member.id)
        member.sock.close()
        self._defer(lambda: self._destroy(member))

    def _destroy(self, member):
        if member.mount_ns is not None:
            self.mount_namespaces.discard(member.mount_ns)
            os.close(member.mount_ns)
        try:
            lifecycle.destroy(member.container or Container.load(self.root, member.id), member.spec)
        except SlrError:
            pass  # gone already

    # --- requests ------------------------------------------------------------------------

    def _accept(self, listener):
        fd, _ = listener._accept()
        client = _socket.socket(fileno=fd)
        peer = peermod.Peer(client)
        try:
            self.allowed.check(peer)
        except peermod.Refused as exc:
            self.log.warning(f"refusing pid {peer.pid}: {exc}")
            self._reply(client, {"error": f"pool {self.name}: {exc}"})
            client.close()
            return
        self.clients[fd] = client
        self.peers[fd] = peer

    def _handle_request(self, client, peer):
        try:
            request, fds = wire.recv(client)
        except (OSError, ValueError) as exc:
            self.log.warning(f"dropping a client: {exc}")
            client.close()
            return
        try:
            if request is None:
                client.close()
                return
            if not isinstance(request, dict) or not isinstance(request.get("args"), list):
                self._reply(client, {"error": "request: args must be an array of strings"})
                client.close()
                return
            try:
                peermod.check_stdio(fds, peer, self.allowed)
            except peermod.Refused as exc:
                self.log.warning(f"refusing a request of uid {peer.uid}: {exc}")
                self._reply(client, {"error": str(exc)})
                client.close()
                return
            self._start(client, request, fds)
        finally:
            for fd in fds:
                os.close(fd)

    def _start(self, client, request, fds):
        if not self.ready:
            # Served as soon as a member is ready (in order); keep the descriptors.
            self.waiting.append((client, request, [os.dup(fd) for fd in fds]))
            self._hurry()
            return
        member = self.members[self.ready.pop(0)]
        try:
            wire.send(member.sock, {k: request[k] for k in ("args", "env", "cwd", "terminal", "consoleSize")
                                    if k in request}, fds)
            answer, pty = self._await_exec(member)
        except (OSError, SlrError) as exc:
            self._reply(client, {"error": f"{member.id}: {exc}"})
            client.close()
            self._forget(member)
            failure = f"request {request['args']!r} failed in {member.id}: {exc}"
            self._defer(lambda: self.log.warning(failure))
            return
        member.handed_at = time.monotonic()
        os.unlink(member.container.fifo)  # status() says "running" from here on
        if member.spec.hooks.get("poststart"):  # before the answer, as `slr start` runs them
            lifecycle.record_started(member.container, member.spec)
        else:  # status() does not read it: after the answer
            self._defer(lambda: self._record_started(member))
        self._reply(client, {"id": member.id, "pid": member.pid}, pty)
        for fd in pty:
            os.close(fd)
        if request.get("wait", True):
            member.client = client
        else:
            client.close()
        self._defer(lambda: self.log.info(f"started {request['args']!r} in {member.id}"))

    def _record_started(self, member):
        try:
            lifecycle.record_started(member.container, member.spec)
        except (OSError, SlrError) as exc:  # e.g. deleted meanwhile (`slr delete --force`)
            self.log.warning(f"member {member.id}: state not recorded: {exc}")

    def _serve_waiting(self):
        while self.waiting and self.ready:
            client, request, fds = self.waiting.pop(0)
            try:
                self._start(client, request, fds)
            finally:
                for fd in fds:
                    os.close(fd)

    @staticmethod
    def _await_exec(member):
        """The member closes its socket by exec (close-on-exec): end-of-file is success."""
        poller = select.poll()
        poller.register(member.sock.fileno(), select.POLLIN)
        pty = []
        while True:
            if not poller.poll(HANDOFF_TIMEOUT_MS):
                raise SlrError("the container did not start its process")
            message, fds = wire.recv(member.sock)
            if message is None:
                return None, pty
            if "error" in message:
                raise SlrError(message["error"])
            pty.extend(fds)

    @staticmethod
    def _reply(client, message, fds=()):
        try:
            wire.send(client, message, fds)
        except OSError:
            pass  # the client left; the container runs on

    # --- the loop --------------------------------------------------------------------------

    def serve(self, listener, ready_fd=None):
        self.listener = listener
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        _signal.set_wakeup_fd(wake_w)
        _signal.signal(_signal.SIGCHLD, lambda *_: None)
        _signal.signal(_signal.SIGTERM, self._stop)
        _signal.signal(_signal.SIGINT, self._stop)
        self._refill()
        poller = select.poll()
        poller.register(listener.fileno(), select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        registered = set()
        while self.running:
            for fd in set(self.clients) - registered:
                poller.register(fd, select.POLLIN)
                registered.add(fd)
            try:
                events = poller.poll(self._poll_timeout_ms())
            except InterruptedError:
                events = []
            if not events and self.later and time.monotonic() >= self._later_due():
                self.later.pop(0)[1]()  # one at a time: a client may come meanwhile
            for fd, _ in events:
                if fd == wake_r:
                    _drain(wake_r)
                elif fd == listener.fileno():
                    self._accept(listener)
                elif fd in self.clients:
                    poller.unregister(fd)
                    registered.discard(fd)
                    self._handle_request(self.clients.pop(fd), self.peers.pop(fd))
            self._reap()
            self._serve_waiting()
            self._refill()
            if ready_fd is not None and self.ready:
                os.write(ready_fd, b"ok\n")
                os.close(ready_fd)
                ready_fd = None
        self.shutdown()

    def _poll_timeout_ms(self):
        """Until the next background work is due (at most 1 s)."""
        due = []
        if self.later:
            due.append(self._later_due())
        pending = sum(1 for m in self.members.values() if m.pid is None)
        if len(self.ready) + pending < self.size:
            due.append(self._refill_at())
        if not due:
            return 1000
        delay = min(due) - time.monotonic()
        return 0 if delay <= 0 else min(1000, int(delay * 1000) + 1)

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._on_child_exit(pid, status)

    def _stop(self, *_):
        self.running = False

    def shutdown(self):
        for member in list(self.members.values()):
            if member.creator is not None:
                try:
                    os.waitpid(member.creator, 0)
                except ChildProcessError:
                    pass
            self._forget(member)
        for _, work in self.later:
            work()
        for name in ("pool.sock", "pool.json"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass


def _has_capability(number):
    from slruntime import files

    for line in files.read("/proc/self/status").splitlines():
        if line.startswith(b"CapEff:"):
            return bool(int(line.split()[1], 16) >> number & 1)
    return False


def _open_mount_namespace(pid):
    """A descriptor of the mount namespace of our child `pid` (reparented to us, the
    subreaper, and not reaped: the pid is its), or None where we may not open it: an
    unprivileged manager cannot, the member being non-dumpable (ptrace access mode)."""
    try:
        return os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:
        return None


def _drain(fd):
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


# --- starting, finding and removing pools ------------------------------------------------

def read_record(root, name):
    try:
        return jsonlite.load_file(os.path.join(pool_dir(root, name), "pool.json"))
    except (OSError, ValueError):
        return None


def manager_alive(record):
    return record is not None and process_start_time(record["pid"]) == record["start_time"]


def remove_stale(root, name):
    """Delete what a dead manager left: its members and its directory."""
    for container in Container.all(root):
        if container.record.pool == name:
            lifecycle.destroy(container)
    directory = pool_dir(root, name)
    if os.path.isdir(directory):
        for entry in os.listdir(directory):
            os.unlink(os.path.join(directory, entry))
        os.rmdir(directory)


def start_daemon(root, name, bundle, size, socket_group=None):
    """Start a manager in the background; returns once a member is ready.
    socket_group: a gid whose members may use the pool too (socket 0660)."""
    from slruntime import log as logmod

    if size < 1:
        raise SlrError("pool size must be at least 1")
    record = read_record(root, name)
    if manager_alive(record):
        raise SlrError(f"pool {name} exists (manager pid {record['pid']})")
    remove_stale(root, name)
    bundle = os.path.abspath(bundle)
    from slruntime import spec as specmod

    specmod.check_rootfs(specmod.load_bundle(bundle, os.geteuid() != 0))  # report config errors here
    directory = pool_dir(root, name)
    sock_path = socket_path(root, name)
    try:
        os.makedirs(root, 0o711, exist_ok=True)
        check_root(root)
        _make_private_dir(os.path.dirname(directory))
        _make_private_dir(directory)
        listener = _listen(sock_path, socket_group)
    except OSError as exc:
        raise SlrError(f"pool {name}: {exc.filename or sock_path}: {exc.strerror}") from None
    allowed = peermod.AllowList(os.geteuid(), socket_group)
    ready_r, ready_w = os.pipe()
    daemon = os.fork()
    if daemon == 0:
        os.close(ready_r)
        try:
            os.setsid()
            null = os.open("/dev/null", os.O_RDWR)
            log_fd = os.open(os.path.join(directory, "pool.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(log_fd, 2)
            jsonlite.write_file_atomic(os.path.join(directory, "pool.json"), {
                "name": name, "bundle": bundle, "size": size, "pid": os.getpid(),
                "start_time": process_start_time(os.getpid()), "socket": sock_path,
                "owner": allowed.owner, "socket_group": socket_group})
            manager = PoolManager(root, name, bundle, size, logmod.setup(None, "json"), allowed)
            manager.serve(listener, ready_w)
            os._exit(0)
        except BaseException as exc:
            os.write(2, f"pool manager: {exc!r}\n".encode())
            os._exit(1)
    os.close(ready_w)
    listener.close()
    with os.fdopen(ready_r) as ready:
        if ready.readline() != "ok\n":
            _stop_manager(root, name, daemon)
            raise SlrError(f"pool {name}: no container could be created; see {os.path.join(directory, 'pool.log')}")
    return sock_path


def _make_private_dir(path):
    """A directory of ours that nobody else can write, whatever the umask: in one that
    others can write, they could put their own pool.sock (and receive the clients'
    descriptors) or a pool.json naming a process for `pool delete` to signal."""
    try:
        os.mkdir(path, 0o711)
        os.chmod(path, 0o711)  # the umask may have narrowed it: a client must reach pool.sock
        return
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in (os.geteuid(), 0) or st.st_mode & 0o022:
        raise SlrError(f"{path} must be a directory of this user or root that only they can write "
                       f"(mode {st.st_mode & 0o7777:o}, uid {st.st_uid})")


def _listen(path, group):
    """The pool's socket, 0600 from the start (no moment with a wider mode), then given
    to `group` and opened to it (0660) if one is set."""
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    old_umask = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    if group is not None:
        os.chown(path, -1, group)
        os.chmod(path, 0o660)
    listener.listen(64)
    return listener


def _stop_manager(root, name, pid):
    try:
        os.kill(pid, _signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    remove_stale(root, name)


def stop(root, name):
    record = read_record(root, name)
    if record is None and not os.path.isdir(pool_dir(root, name)):
        raise SlrError(f"pool does not exist: {name}")
    if manager_alive(record):
        os.kill(record["pid"], _signal.SIGTERM)
        deadline = time.monotonic() + 20
        while process_start_time(record["pid"]) == record["start_time"] and time.monotonic() < deadline:
            time.sleep(0.01)
    remove_stale(root, name)


def list_pools(root):
    try:
        names = sorted(os.listdir(os.path.join(root, POOLS_DIR)))
    except FileNotFoundError:
        return []
    pools = []
    for name in filter(valid_name, names):  # not made by `pool create`: not a pool
        record = read_record(root, name) or {"name": name}
        ready = sum(1 for c in Container.all(root) if c.record.pool == name and c.status() == "created")
        pools.append({"name": name, "bundle": record.get("bundle", ""), "size": record.get("size", 0),
                      "ready": ready, "status": "running" if manager_alive(record) else "stale",
                      "socket": record.get("socket", "")})
    return pools
