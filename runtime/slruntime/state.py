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


# state.json's layout. 1: the first versioned one; the releases before wrote the same
# fields without "slrStateVersion" (read as version 0, unchanged otherwise). Raise it
# when a field changes meaning, and read the older versions in StateRecord.from_json.
SCHEMA_VERSION = 1


class StateRecord:
    """What state.json holds: written by create (and start, for the status), read by
    every later command. The JSON keys are the OCI state's where it has the field."""

    __slots__ = ("oci_version", "id", "status", "pid", "bundle", "annotations", "created", "owner",
                 "creator_pid", "creator_start_time", "init_start_time", "cgroup", "rootfs", "no_new_keyring", "pool")

    def __init__(self, container_id, bundle, annotations, oci_version=OCI_VERSION, status="creating", pid=0,
                 created="", owner="", creator_pid=0, creator_start_time=None, init_start_time=None, cgroup=None, rootfs="",
                 no_new_keyring=False, pool=None):
        self.oci_version = oci_version
        self.id = container_id
        self.status = status  # as recorded: "creating", "created", "running" or "stopped"
        self.pid = pid  # the init's; 0 until create forked it
        self.bundle = bundle
        self.annotations = annotations
        self.created = created  # RFC 3339
        self.owner = owner
        self.creator_pid = creator_pid  # the `create` that owns a "creating" container
        self.creator_start_time = creator_start_time  # None in the records of older releases
        self.init_start_time = init_start_time  # tells the init from a later process with its pid
        self.cgroup = cgroup  # the cgroup's own record (Cgroup.to_state), None without one
        self.rootfs = rootfs
        self.no_new_keyring = no_new_keyring  # exec processes keep the caller's keyring too
        self.pool = pool  # the name of the pool the container is a member of

    def to_json(self):
        data = {"slrStateVersion": SCHEMA_VERSION, "ociVersion": self.oci_version, "id": self.id,
                "status": self.status, "pid": self.pid, "bundle": self.bundle, "annotations": self.annotations,
                "created": self.created, "owner": self.owner, "creator_pid": self.creator_pid,
                "creator_start_time": self.creator_start_time,
                "init_start_time": self.init_start_time, "cgroup": self.cgroup, "rootfs": self.rootfs}
        if self.no_new_keyring:
            data["no_new_keyring"] = True
        if self.pool is not None:
            data["pool"] = self.pool
        return data

    @classmethod
    def from_json(cls, data, source):
        """The record of a parsed state.json (`source` names it in errors)."""
        if not isinstance(data, dict):
            raise SlrError(f"{source}: unreadable state: not a JSON object")
        version = data.get("slrStateVersion", 0)
        if version not in (0, SCHEMA_VERSION):
            raise SlrError(f"{source}: unknown state version {version!r} (written by a newer slr?)")
        try:
            return cls(data["id"], data["bundle"], data.get("annotations"), oci_version=data["ociVersion"],
                       status=data["status"], pid=data["pid"], created=data["created"], owner=data.get("owner", ""),
                       creator_pid=data["creator_pid"], creator_start_time=data.get("creator_start_time"),
                       init_start_time=data["init_start_time"],
                       cgroup=data.get("cgroup"), rootfs=data.get("rootfs", ""),
                       no_new_keyring=bool(data.get("no_new_keyring")), pool=data.get("pool"))
        except KeyError as exc:
            raise SlrError(f"{source}: unreadable state: {exc.args[0]} is missing") from None


class Container:
    """What the runtime knows about one container: its state directory and record."""

    def __init__(self, root, container_id, record):
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.record = record

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
        creator = os.getpid()
        record = StateRecord(container_id, bundle, annotations, created=rfc3339_now(), creator_pid=creator,
                             creator_start_time=process_start_time(creator))
        container = cls(root, container_id, record)
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
        return cls(root, container_id, StateRecord.from_json(data, f"container {container_id}"))

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
        jsonlite.write_file_atomic(os.path.join(self.dir, STATE_FILE), self.record.to_json())

    # --- what create saved beside the record -------------------------------------------

    def saved_config(self):
        """config.json as it was when create validated it (spec.parse reads it)."""
        return self._load_saved(CONFIG_FILE, "saved config")

    def save_config(self, config):
        jsonlite.write_file_atomic(os.path.join(self.dir, CONFIG_FILE), config)

    def saved_seccomp(self):
        """The seccomp profile the init got (spec.seccomp_record), or None: no profile,
        or a container created before the record existed (its config.json has it)."""
        return self._load_saved(SECCOMP_FILE, "seccomp record", missing_ok=True)

    def save_seccomp(self, record):
        jsonlite.write_file_atomic(os.path.join(self.dir, SECCOMP_FILE), record)

    def _load_saved(self, name, what, missing_ok=False):
        try:
            return jsonlite.load_file(os.path.join(self.dir, name))
        except FileNotFoundError:
            if missing_ok:
                return None
            raise SlrError(f"container {self.id}: no {what}") from None
        except (OSError, ValueError) as exc:
            raise SlrError(f"container {self.id}: unreadable {what}: {exc}") from None

    # --- derived status ---------------------------------------------------------------

    @property
    def pid(self):
        return self.record.pid

    @property
    def fifo(self):
        return os.path.join(self.dir, FIFO)

    def init_alive(self):
        pid = self.record.pid
        if not pid:
            return False
        return process_start_time(pid) == self.record.init_start_time

    def creator_alive(self):
        """The `create` that owns this "creating" container still runs (not merely its
        pid: after a killed create, another process may have it)."""
        started = process_start_time(self.record.creator_pid)
        expected = self.record.creator_start_time
        return started is not None and (expected is None or started == expected)

    def status(self):
        recorded = self.record.status
        if recorded == "creating":
            if self.creator_alive():
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
        if not self.record.cgroup:
            return None
        from slruntime import cgroups

        return cgroups.from_state(self.record.cgroup)

    def oci_state(self, status=None):
        """The runtime-spec state object (what hooks get on stdin)."""
        status = status or self.status()
        record = self.record
        state = {"ociVersion": record.oci_version, "id": self.id, "status": status, "bundle": record.bundle}
        if status in ("created", "running", "paused") or (status == "creating" and record.pid):
            state["pid"] = record.pid
        if record.annotations:
            state["annotations"] = record.annotations
        return state

    def runc_state(self):
        """What `slr state` prints: runc's shape (the OCI state plus rootfs, created, owner)."""
        status = self.status()
        record = self.record
        return {"ociVersion": record.oci_version, "id": self.id, "pid": record.pid if status != "stopped" else 0,
                "status": status, "bundle": record.bundle, "rootfs": record.rootfs, "created": record.created,
                "owner": record.owner, "annotations": record.annotations or {}}

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
