"""Container state: one directory per container under the state root.

<root>/<id>/state.json   runtime state, written atomically (temp file + rename)
<root>/<id>/config.json  the config the container was created with (hooks, exec defaults)
<root>/<id>/seccomp.json the seccomp profile every process of the container gets, wherever
                         it came from (config.json, the image, slr.conf); absent: none
<root>/<id>/exec.fifo    exists from create until start: the init blocks reading it
<root>/<id>/init.error   what the init could not do once `create` returned (read by start)

The status is derived, never trusted from the file alone: the init's pid is checked
against its recorded start time (pids are reused) and zombie state, so `state` is
right after the runtime exited and after the container's process died.
"""

import os
import time

from slruntime import OCI_VERSION, files, jsonlite
from slruntime.errors import ContainerExists, ContainerNotFound, SlrError

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
SECCOMP_FILE = "seccomp.json"
SHARED_ROOT = "rootfs"  # mount point of the / of a container in the runtime's mount namespace
FIFO = "exec.fifo"
INIT_ERROR = "init.error"
# The container init's name until its execve (runc's is "runc:[2:INIT]"): how `start`
# tells an init that died before exec from a container process that exited.
INIT_COMM = b"slr:INIT"


MAX_ID = 255  # NAME_MAX: the id names the state directory (and the default cgroup)


def valid_id(container_id):
    if not container_id or container_id in (".", "..") or len(container_id) > MAX_ID:
        return False
    return all(c.isalnum() or c in "_+-." for c in container_id) and container_id.isascii()


def check_id(container_id):
    if len(container_id) > MAX_ID:
        raise SlrError(f"invalid container id: longer than {MAX_ID} characters")
    if not valid_id(container_id):
        raise SlrError(f"invalid container id {container_id!r}: use letters, digits and _+-.")


def check_root(root):
    """The state root must be ours (or root's) and writable by nobody else: whoever can
    write in it can plant a state.json naming any pid for `kill`, or a config.json whose
    poststop hooks `delete` runs as us (think of /tmp/slr-UID made by another user
    before us). A missing root is fine: nothing is in it."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SlrError(f"state root {root}: {exc.strerror}") from None
    if st.st_uid not in (os.geteuid(), 0):
        raise SlrError(f"state root {root} belongs to uid {st.st_uid}, not to this user")
    if st.st_mode & 0o022:
        raise SlrError(f"state root {root} is writable by other users (mode {st.st_mode & 0o7777:o})")


def process_start_time(pid):
    """Field 22 of /proc/PID/stat, or None when the process is gone or a zombie."""
    try:
        data = files.read(f"/proc/{pid}/stat")
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def exec_outcome(pid):
    """(comm, exit status) of `pid` once it is dead (a zombie), or None while it runs;
    raises ProcessLookupError once it is reaped. The exit status is waitpid's, 0 when
    the kernel does not show it to us (fields 2 and 52 of /proc/PID/stat)."""
    try:
        data = files.read(f"/proc/{pid}/stat")
    except OSError:
        raise ProcessLookupError(pid) from None
    comm = data[data.index(b"(") + 1:data.rindex(b")")]
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] not in (b"Z", b"X"):
        return comm, None
    return comm, int(fields[49]) if len(fields) > 49 else 0


def rfc3339_now():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


class Container:
    """What the runtime knows about one container."""

    def __init__(self, root, container_id, data):
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.data = data

    # --- creation and loading ---------------------------------------------------------

    @classmethod
    def reserve(cls, root, container_id, bundle, annotations):
        """Claim the id by creating its directory (atomic: mkdir fails if it exists)."""
        check_id(container_id)
        os.makedirs(root, 0o711, exist_ok=True)
        check_root(root)
        directory = os.path.join(root, container_id)
        try:
            os.mkdir(directory, 0o711)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        data = {
            "ociVersion": OCI_VERSION, "id": container_id, "status": "creating", "pid": 0,
            "bundle": bundle, "annotations": annotations, "created": rfc3339_now(),
            "owner": "", "creator_pid": os.getpid(), "init_start_time": None, "cgroup": None,
            "rootfs": "",
        }
        container = cls(root, container_id, data)
        container.save()
        return container

    @classmethod
    def load(cls, root, container_id):
        if not valid_id(container_id):
            raise ContainerNotFound(container_id)
        check_root(root)
        try:
            data = jsonlite.load_file(os.path.join(root, container_id, STATE_FILE))
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        except (OSError, ValueError) as exc:
            raise SlrError(f"container {container_id}: unreadable state: {exc}") from None
        return cls(root, container_id, data)

    @classmethod
    def all(cls, root):
        check_root(root)
        try:
            names = sorted(os.listdir(root))
        except FileNotFoundError:
            return []
        containers = []
        for name in names:
            try:
                containers.append(cls.load(root, name))
            except SlrError:
                continue
        return containers

    def save(self):
        jsonlite.write_file_atomic(os.path.join(self.dir, STATE_FILE), self.data)

    # --- derived status ---------------------------------------------------------------

    @property
    def pid(self):
        return self.data["pid"]

    @property
    def fifo(self):
        return os.path.join(self.dir, FIFO)

    def init_alive(self):
        pid = self.data["pid"]
        if not pid:
            return False
        return process_start_time(pid) == self.data["init_start_time"]

    def status(self):
        recorded = self.data["status"]
        if recorded == "creating":
            if process_start_time(self.data["creator_pid"]) is not None:
                return "creating"
            return "stopped"  # the creating runtime died: nothing runs
        if recorded == "stopped" or not self.init_alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        cgroup = self.cgroup()
        if cgroup is not None and cgroup.is_frozen():
            return "paused"
        return "running"

    def cgroup(self):
        record = self.data.get("cgroup")
        if not record:
            return None
        from slruntime import cgroups

        return cgroups.from_state(record)

    def oci_state(self, status=None):
        """The runtime-spec state object (what hooks get on stdin)."""
        status = status or self.status()
        state = {"ociVersion": self.data["ociVersion"], "id": self.id, "status": status,
                 "bundle": self.data["bundle"]}
        if status in ("created", "running", "paused") or (status == "creating" and self.data["pid"]):
            state["pid"] = self.data["pid"]
        if self.data.get("annotations"):
            state["annotations"] = self.data["annotations"]
        return state

    def runc_state(self):
        """What `slr state` prints: runc's shape (the OCI state plus rootfs, created, owner)."""
        status = self.status()
        return {"ociVersion": self.data["ociVersion"], "id": self.id,
                "pid": self.data["pid"] if status != "stopped" else 0, "status": status,
                "bundle": self.data["bundle"], "rootfs": self.data.get("rootfs", ""),
                "created": self.data["created"], "owner": self.data.get("owner", ""),
                "annotations": self.data.get("annotations") or {}}

    def remove(self):
        for name in (FIFO, STATE_FILE, CONFIG_FILE, SECCOMP_FILE):
            try:
                os.unlink(os.path.join(self.dir, name))
            except FileNotFoundError:
                pass
        for leftover in os.listdir(self.dir) if os.path.isdir(self.dir) else ():
            os.unlink(os.path.join(self.dir, leftover))  # stale temp files of a crashed write
        try:
            os.rmdir(self.dir)
        except FileNotFoundError:
            pass
