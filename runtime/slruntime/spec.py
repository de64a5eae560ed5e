"""config.json -> validated spec objects.

The whole configuration is checked here, before the runtime touches the system, so a
bad config never leaves a state directory, cgroup, mount or process behind. Every
error names the JSON path, e.g. `config.json: linux.namespaces[2].type: unknown
namespace "foo"`. Unknown properties are ignored, as the runtime-spec requires.
"""

import os
import stat

from slruntime import files, jsonlite
from slruntime.errors import SlrError, SpecError

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # index == capability number
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

SECCOMP_ACTIONS = (
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
)
SECCOMP_OPERATORS = (
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
    "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
)
SECCOMP_ARCHES = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
)
SECCOMP_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)

SCHEDULER_POLICIES = {
    "SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
    "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
}
SCHEDULER_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}

ROOTFS_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

_MAX_U64 = (1 << 64) - 1
# The kernel's limits, checked here so that a config past them is refused naming its
# JSON path, before anything is created (not as an error of a system call in the init).
PATH_MAX = 4096  # bytes, with the terminating NUL
NGROUPS_MAX = 65536  # supplementary groups setgroups(2) takes
MAX_UMASK = 0o777


# --- typed accessors -------------------------------------------------------------

def _join(path, key):
    return f"{path}.{key}" if path else key


def _type_error(path, want, value):
    got = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")
    raise SpecError(path, f"must be {want}, not {got}")


def _field(obj, key, path, check, default=None, required=False):
    if key not in obj or (obj[key] is None and not required):
        if required:
            raise SpecError(_join(path, key), "is required")
        return default
    return check(obj[key], _join(path, key))


def _object(value, path):
    if not isinstance(value, dict):
        _type_error(path, "an object", value)
    return value


def _string(value, path):
    if not isinstance(value, str):
        _type_error(path, "a string", value)
    if "\0" in value:
        raise SpecError(path, "contains a NUL byte")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:  # "\ud800" is valid JSON: it cannot reach argv, env or a path
            raise SpecError(path, "contains a lone surrogate (not valid Unicode)") from None
    return value


def _nonempty_string(value, path):
    if not _string(value, path):
        raise SpecError(path, "must not be empty")
    return value


def _bool(value, path):
    if not isinstance(value, bool):
        _type_error(path, "a boolean", value)
    return value


def _int(value, path, lo=-(1 << 63), hi=_MAX_U64):
    if isinstance(value, bool) or not isinstance(value, int):
        _type_error(path, "an integer", value)
    if not lo <= value <= hi:
        raise SpecError(path, f"{value} is out of range [{lo}, {hi}]")
    return value


def _uint32(value, path):
    return _int(value, path, 0, 0xFFFFFFFF)


def _uint64(value, path):
    return _int(value, path, 0, _MAX_U64)


def _int64(value, path):
    return _int(value, path, -(1 << 63), (1 << 63) - 1)


def _list(value, path, item=None):
    if not isinstance(value, list):
        _type_error(path, "an array", value)
    if item is None:
        return value
    return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]


def _strings(value, path):
    return _list(value, path, _string)


def _string_map(value, path):
    for key, item in _object(value, path).items():
        _string(item, _join(path, key))
    return value


def _env(value, path):
    for i, entry in enumerate(_strings(value, path)):
        if "=" not in entry:
            raise SpecError(f"{path}[{i}]", f'"{entry}" is not of the form KEY=value')
    return value


def _path(value, path):
    if len(_string(value, path).encode()) >= PATH_MAX:
        raise SpecError(path, f"is longer than PATH_MAX ({PATH_MAX - 1} bytes)")
    return value


def _abs_path(value, path):
    if not _path(value, path).startswith("/"):
        raise SpecError(path, f'"{value}" is not an absolute path')
    return value


def _choice(value, path, choices, what):
    _string(value, path)
    if value not in choices:
        raise SpecError(path, f'unknown {what} "{value}"')
    return value


# --- spec objects ----------------------------------------------------------------

class Spec:
    __slots__ = ("oci_version", "bundle", "root_path", "root_readonly", "process", "hostname",
                 "domainname", "mounts", "hooks", "annotations", "linux", "raw")


class Process:
    __slots__ = ("terminal", "console_size", "uid", "gid", "umask", "additional_gids", "args",
                 "env", "cwd", "capabilities", "rlimits", "no_new_privileges", "apparmor_profile",
                 "selinux_label", "oom_score_adj", "scheduler", "io_priority", "exec_cpu_affinity")


class Mount:
    __slots__ = ("destination", "type", "source", "options", "flags", "clear_flags",
                 "propagation", "data", "uid_mappings", "gid_mappings")

    @property
    def is_bind(self):
        return bool(self.flags & _MS_BIND)


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def to_json(self):
        out = {"path": self.path}
        if self.args is not None:
            out["args"] = self.args
        if self.env is not None:
            out["env"] = self.env
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out


class Linux:
    __slots__ = ("namespaces", "uid_mappings", "gid_mappings", "devices", "cgroups_path",
                 "resources", "rootfs_propagation", "seccomp", "seccomp_floor", "sysctl", "masked_paths",
                 "readonly_paths", "mount_label", "personality", "time_offsets")

    def namespace(self, ns_type):
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


class Namespace:
    __slots__ = ("type", "path")


class IDMapping:
    __slots__ = ("container_id", "host_id", "size")


class Device:
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")


class Scheduler:
    """process.scheduler, as sched_setattr(2) takes it."""
    __slots__ = ("policy", "flags", "nice", "priority", "runtime", "deadline", "period")


class Resources:
    """linux.resources; a section or field the document leaves out is None."""
    __slots__ = ("devices", "memory", "cpu", "pids", "block_io", "hugepage_limits", "network", "rdma", "unified")

    def asks_anything(self):
        return any(getattr(self, name) is not None for name in self.__slots__)


class DeviceRule:
    """One of linux.resources.devices; type, major, minor and access None when absent."""
    __slots__ = ("allow", "type", "major", "minor", "access")


class Memory:
    __slots__ = ("limit", "reservation", "swap", "kernel", "kernel_tcp", "swappiness", "disable_oom_killer",
                 "use_hierarchy", "check_before_update")


class Cpu:
    """cpus and mems: cpuset lists as written ("0-3,7"), checked."""
    __slots__ = ("shares", "quota", "burst", "period", "realtime_runtime", "realtime_period", "cpus", "mems", "idle")


class Pids:
    __slots__ = ("limit",)


class BlockIO:
    __slots__ = ("weight", "leaf_weight", "weight_device", "throttle_read_bps_device", "throttle_write_bps_device",
                 "throttle_read_iops_device", "throttle_write_iops_device")

    def throttles(self):
        """(kind, ThrottleDevice) of every throttle: kind read_bps, write_bps, read_iops
        or write_iops."""
        for kind, devices in (("read_bps", self.throttle_read_bps_device),
                              ("write_bps", self.throttle_write_bps_device),
                              ("read_iops", self.throttle_read_iops_device),
                              ("write_iops", self.throttle_write_iops_device)):
            for device in devices or ():
                yield kind, device


class WeightDevice:
    __slots__ = ("major", "minor", "weight", "leaf_weight")


class ThrottleDevice:
    __slots__ = ("major", "minor", "rate")


class HugepageLimit:
    __slots__ = ("page_size", "limit")


class Network:
    __slots__ = ("class_id", "priorities")


class InterfacePriority:
    __slots__ = ("name", "priority")


class Seccomp:
    """linux.seccomp. architectures, flags and syscalls are lists (empty when absent)."""
    __slots__ = ("default_action", "default_errno_ret", "architectures", "flags", "listener_path",
                 "listener_metadata", "syscalls")

    def notifies(self):
        return self.default_action == "SCMP_ACT_NOTIFY" or any(
            rule.action == "SCMP_ACT_NOTIFY" for rule in self.syscalls)

    def to_json(self, with_listener=True):
        """The linux.seccomp object again (what parse_seccomp reads), without its
        listener (listenerPath, listenerMetadata: who gets the notify descriptor, not
        what the filter does) unless with_listener."""
        out = {"defaultAction": self.default_action}
        if self.default_errno_ret is not None:
            out["defaultErrnoRet"] = self.default_errno_ret
        if self.architectures:
            out["architectures"] = self.architectures
        if self.flags:
            out["flags"] = self.flags
        if with_listener and self.listener_path is not None:
            out["listenerPath"] = self.listener_path
        if with_listener and self.listener_metadata is not None:
            out["listenerMetadata"] = self.listener_metadata
        if self.syscalls:
            out["syscalls"] = [rule.to_json() for rule in self.syscalls]
        return out


class SeccompRule:
    __slots__ = ("names", "action", "errno_ret", "args")

    def to_json(self):
        out = {"names": self.names, "action": self.action}
        if self.errno_ret is not None:
            out["errnoRet"] = self.errno_ret
        if self.args:
            out["args"] = [arg.to_json() for arg in self.args]
        return out


class SeccompArg:
    __slots__ = ("index", "value", "value_two", "op")

    def to_json(self):
        out = {"index": self.index, "value": self.value, "op": self.op}
        if self.value_two is not None:
            out["valueTwo"] = self.value_two
        return out


# --- sections ----------------------------------------------------------------------

def _parse_version(value, path):
    _string(value, path)
    parts = value.split("-")[0].split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise SpecError(path, f'"{value}" is not a semantic version')
    if parts[0] != "1":
        raise SpecError(path, f'unsupported ociVersion "{value}" (this runtime supports 1.x)')
    return value


def _id(value, path):
    """A user or group id: 4294967295 is (uid_t)-1, which setresuid(2) and setresgid(2)
    take as "leave unchanged": the process would stay root."""
    return _int(value, path, 0, 0xFFFFFFFE)


def _uts_name(value, path):
    if len(_string(value, path).encode()) > 64:  # __NEW_UTS_LEN: sethostname(2) says only EINVAL
        raise SpecError(path, "is longer than 64 bytes")
    return value


def _additional_gids(value, path):
    if len(_list(value, path)) > NGROUPS_MAX:
        raise SpecError(path, f"has {len(value)} groups, more than NGROUPS_MAX ({NGROUPS_MAX})")
    return _list(value, path, _id)


def _parse_user(obj, path, proc):
    _object(obj, path)
    proc.uid = _field(obj, "uid", path, _id, required=True)
    proc.gid = _field(obj, "gid", path, _id, required=True)
    proc.umask = _field(obj, "umask", path, lambda v, p: _int(v, p, 0, MAX_UMASK))
    proc.additional_gids = _field(obj, "additionalGids", path, _additional_gids, [])
    if "username" in obj:
        _string(obj["username"], _join(path, "username"))


def _parse_capabilities(value, path):
    _object(value, path)
    sets = {}
    for name in CAPABILITY_SETS:
        caps = _field(value, name, path, _strings)
        if caps is None:
            continue
        numbers = []
        for i, cap in enumerate(caps):
            if cap not in CAPABILITIES:
                raise SpecError(f"{path}.{name}[{i}]", f'unknown capability "{cap}"')
            numbers.append(CAPABILITIES.index(cap))
        sets[name] = numbers
    # What capset(2) would refuse later, refused now. (Ambient capabilities missing
    # from the inheritable set are skipped at exec, as runc and crun do: `runc spec`
    # itself writes such configs.)
    permitted = set(sets.get("permitted", ()))
    for cap in sets.get("effective", ()):
        if cap not in permitted:
            raise SpecError(path, f'effective "{CAPABILITIES[cap]}" is not in the permitted set')
    return sets


def _parse_rlimits(value, path):
    seen = set()
    rlimits = []
    for i, item in enumerate(_list(value, path)):
        item_path = f"{path}[{i}]"
        _object(item, item_path)
        name = _field(item, "type", item_path, _string, required=True)
        if name not in RLIMITS:
            raise SpecError(_join(item_path, "type"), f'unknown rlimit "{name}"')
        if name in seen:
            raise SpecError(_join(item_path, "type"), f'duplicate rlimit "{name}"')
        seen.add(name)
        soft = _field(item, "soft", item_path, _uint64, required=True)
        hard = _field(item, "hard", item_path, _uint64, required=True)
        if soft > hard:
            raise SpecError(item_path, f"soft limit {soft} is above hard limit {hard}")
        rlimits.append((RLIMITS[name], soft, hard))
    return rlimits


def _parse_scheduler(value, path):
    _object(value, path)
    policy = _field(value, "policy", path, _string, required=True)
    if policy not in SCHEDULER_POLICIES:
        raise SpecError(_join(path, "policy"), f'unknown scheduler policy "{policy}"')
    sched = Scheduler()
    sched.policy = SCHEDULER_POLICIES[policy]
    sched.flags = 0
    for i, flag in enumerate(_field(value, "flags", path, _strings, [])):
        if flag not in SCHEDULER_FLAGS:
            raise SpecError(f"{path}.flags[{i}]", f'unknown scheduler flag "{flag}"')
        sched.flags |= SCHEDULER_FLAGS[flag]
    sched.nice = _field(value, "nice", path, lambda v, p: _int(v, p, -20, 19), 0)
    sched.priority = _field(value, "priority", path, lambda v, p: _int(v, p, 0, 99), 0)
    sched.runtime = _field(value, "runtime", path, _uint64, 0)
    sched.deadline = _field(value, "deadline", path, _uint64, 0)
    sched.period = _field(value, "period", path, _uint64, 0)
    if policy in ("SCHED_FIFO", "SCHED_RR") and sched.priority < 1:
        raise SpecError(_join(path, "priority"), f"{policy} needs a priority between 1 and 99")
    if policy == "SCHED_DEADLINE" and not sched.runtime <= sched.deadline <= (sched.period or sched.deadline):
        raise SpecError(path, "SCHED_DEADLINE needs runtime <= deadline <= period")
    return sched


def parse_cpu_list(value, path):
    """A cpuset list like "0-3,7" -> sorted list of CPU numbers."""
    _string(value, path)
    cpus = set()
    for part in value.split(","):
        part = part.strip()
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise SpecError(path, f'"{value}" is not a CPU list like "0-3,7"')
        start, end = int(lo), int(hi or lo)
        if end < start or end > 4095:
            raise SpecError(path, f'"{value}" has an invalid range "{part}"')
        cpus.update(range(start, end + 1))
    return sorted(cpus)


def parse_process(value, path, rootless):
    _object(value, path)
    proc = Process()
    proc.terminal = _field(value, "terminal", path, _bool, False)
    size = _field(value, "consoleSize", path, _object)
    proc.console_size = None
    if size is not None:
        proc.console_size = (
            _field(size, "height", _join(path, "consoleSize"), _uint32, required=True),
            _field(size, "width", _join(path, "consoleSize"), _uint32, required=True),
        )
    _parse_user(_field(value, "user", path, _object, required=True), _join(path, "user"), proc)
    proc.args = _field(value, "args", path, _strings, required=True)
    if not proc.args:
        raise SpecError(_join(path, "args"), "must name the program to run")
    proc.env = _field(value, "env", path, _env, [])
    proc.cwd = _field(value, "cwd", path, _abs_path, required=True)
    proc.capabilities = _field(value, "capabilities", path, _parse_capabilities, {})
    proc.rlimits = _field(value, "rlimits", path, _parse_rlimits, [])
    proc.no_new_privileges = _field(value, "noNewPrivileges", path, _bool, False)
    proc.apparmor_profile = _field(value, "apparmorProfile", path, _string)
    proc.selinux_label = _field(value, "selinuxLabel", path, _string)
    proc.oom_score_adj = _field(value, "oomScoreAdj", path, lambda v, p: _int(v, p, -1000, 1000))
    proc.scheduler = _field(value, "scheduler", path, _parse_scheduler)
    proc.io_priority = None
    prio = _field(value, "ioPriority", path, _object)
    if prio is not None:
        prio_path = _join(path, "ioPriority")
        klass = _field(prio, "class", prio_path, _string, required=True)
        if klass not in IOPRIO_CLASSES:
            raise SpecError(_join(prio_path, "class"), f'unknown I/O priority class "{klass}"')
        proc.io_priority = (IOPRIO_CLASSES[klass], _field(prio, "priority", prio_path, lambda v, p: _int(v, p, 0, 7), 0))
    proc.exec_cpu_affinity = None
    affinity = _field(value, "execCPUAffinity", path, _object)
    if affinity is not None:
        aff_path = _join(path, "execCPUAffinity")
        proc.exec_cpu_affinity = (
            _field(affinity, "initial", aff_path, parse_cpu_list),
            _field(affinity, "final", aff_path, parse_cpu_list),
        )
    return proc


# Mount options that are flags, as runc understands them: name -> (clear?, flag).
_MS_BIND = 0x1000
_MOUNT_FLAGS = {
    "ro": (False, 0x1), "rw": (True, 0x1), "nosuid": (False, 0x2), "suid": (True, 0x2),
    "nodev": (False, 0x4), "dev": (True, 0x4), "noexec": (False, 0x8), "exec": (True, 0x8),
    "sync": (False, 0x10), "async": (True, 0x10), "remount": (False, 0x20),
    "mand": (False, 0x40), "nomand": (True, 0x40), "dirsync": (False, 0x80),
    "nosymfollow": (False, 0x100), "symfollow": (True, 0x100),
    "noatime": (False, 0x400), "atime": (True, 0x400), "nodiratime": (False, 0x800),
    "diratime": (True, 0x800), "bind": (False, 0x1000), "rbind": (False, 0x1000 | 0x4000),
    "silent": (False, 0x8000), "loud": (True, 0x8000), "relatime": (False, 0x200000),
    "norelatime": (True, 0x200000), "strictatime": (False, 0x1000000),
    "nostrictatime": (True, 0x1000000), "lazytime": (False, 0x2000000),
    "nolazytime": (True, 0x2000000),
}
_PROPAGATION_FLAGS = {
    "private": 0x40000, "rprivate": 0x40000 | 0x4000, "shared": 0x100000,
    "rshared": 0x100000 | 0x4000, "slave": 0x80000, "rslave": 0x80000 | 0x4000,
    "unbindable": 0x20000, "runbindable": 0x20000 | 0x4000,
}
_UNSUPPORTED_MOUNT_OPTIONS = ("rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec",
                              "rexec", "rnoatime", "ratime", "idmap", "ridmap", "tmpcopyup")


def _parse_id_mappings(value, path):
    mappings = []
    for i, item in enumerate(_list(value, path)):
        item_path = f"{path}[{i}]"
        _object(item, item_path)
        m = IDMapping()
        m.container_id = _field(item, "containerID", item_path, _uint32, required=True)
        m.host_id = _field(item, "hostID", item_path, _uint32, required=True)
        m.size = _field(item, "size", item_path, _uint32, required=True)
        if m.size == 0:
            raise SpecError(_join(item_path, "size"), "must be at least 1")
        if m.container_id + m.size > 1 << 32 or m.host_id + m.size > 1 << 32:
            raise SpecError(item_path, "range exceeds the 32-bit id space")
        for other in mappings:
            if m.container_id < other.container_id + other.size and other.container_id < m.container_id + m.size:
                raise SpecError(item_path, "overlaps another mapping's containerID range")
        mappings.append(m)
    return mappings


def _parse_mount(value, path, bundle):
    _object(value, path)
    m = Mount()
    m.destination = _field(value, "destination", path, _abs_path, required=True)
    m.type = _field(value, "type", path, _string, "")
    m.source = _field(value, "source", path, _path, "")
    m.options = _field(value, "options", path, _strings, [])
    m.flags = m.clear_flags = m.propagation = 0
    data = []
    for i, opt in enumerate(m.options):
        if opt in _MOUNT_FLAGS:
            clear, flag = _MOUNT_FLAGS[opt]
            if clear:
                m.flags &= ~flag
                m.clear_flags |= flag
            else:
                m.flags |= flag
        elif opt in _PROPAGATION_FLAGS:
            m.propagation |= _PROPAGATION_FLAGS[opt]
        elif opt in _UNSUPPORTED_MOUNT_OPTIONS:
            raise SpecError(f"{path}.options[{i}]", f'mount option "{opt}" is not supported yet')
        else:
            data.append(opt)  # filesystem-specific, e.g. mode=755 or size=64k
    m.data = ",".join(data)
    if m.type == "bind":
        m.flags |= _MS_BIND
    if m.flags & _MS_BIND:
        if not m.source:
            raise SpecError(_join(path, "source"), "is required for a bind mount")
        if not m.source.startswith("/"):
            m.source = os.path.join(bundle, m.source)
    elif not m.type:
        raise SpecError(_join(path, "type"), "is required unless the mount is a bind mount")
    m.uid_mappings = _field(value, "uidMappings", path, _parse_id_mappings, [])
    m.gid_mappings = _field(value, "gidMappings", path, _parse_id_mappings, [])
    if m.uid_mappings or m.gid_mappings:
        raise SpecError(_join(path, "uidMappings"), "id-mapped mounts are not supported yet")
    return m


def _parse_hooks(value, path):
    _object(value, path)
    hooks = {}
    for name in HOOK_NAMES:
        entries = _field(value, name, path, _list, [])
        parsed = []
        for i, item in enumerate(entries):
            item_path = f"{path}.{name}[{i}]"
            _object(item, item_path)
            hook = Hook()
            hook.path = _field(item, "path", item_path, _abs_path, required=True)
            hook.args = _field(item, "args", item_path, _strings)
            hook.env = _field(item, "env", item_path, _env)  # else a poststop hook stops `delete` midway
            hook.timeout = _field(item, "timeout", item_path, lambda v, p: _int(v, p, 1, 1 << 31))
            parsed.append(hook)
        if parsed:
            hooks[name] = parsed
    return hooks


def _parse_namespaces(value, path):
    namespaces = []
    seen = set()
    for i, item in enumerate(_list(value, path)):
        item_path = f"{path}[{i}]"
        _object(item, item_path)
        ns = Namespace()
        ns.type = _field(item, "type", item_path, _string, required=True)
        if ns.type not in NAMESPACE_TYPES:
            raise SpecError(_join(item_path, "type"), f'unknown namespace "{ns.type}"')
        if ns.type in seen:
            raise SpecError(_join(item_path, "type"), f'duplicate namespace "{ns.type}"')
        seen.add(ns.type)
        ns.path = _field(item, "path", item_path, _abs_path)
        namespaces.append(ns)
    return namespaces


def _parse_devices(value, path):
    devices = []
    for i, item in enumerate(_list(value, path)):
        item_path = f"{path}[{i}]"
        _object(item, item_path)
        dev = Device()
        dev.path = _field(item, "path", item_path, _abs_path, required=True)
        dev.type = _field(item, "type", item_path, _string, required=True)
        if dev.type not in ("c", "b", "u", "p"):
            raise SpecError(_join(item_path, "type"), f'unknown device type "{dev.type}"')
        need_numbers = dev.type != "p"
        dev.major = _field(item, "major", item_path, _int64, 0, required=need_numbers)
        dev.minor = _field(item, "minor", item_path, _int64, 0, required=need_numbers)
        dev.file_mode = _field(item, "fileMode", item_path, lambda v, p: _int(v, p, 0, 0o7777), 0o666)
        dev.uid = _field(item, "uid", item_path, _uint32, 0)
        dev.gid = _field(item, "gid", item_path, _uint32, 0)
        devices.append(dev)
    return devices


def _cpu_list_text(value, path):
    """A cpuset list, checked, kept as written: the cgroup file takes the same syntax."""
    parse_cpu_list(value, path)
    return value


def _record(cls, fields):
    """A parser of a JSON object into a `cls`: fields are (JSON key, attribute, parser);
    an absent or null field is None."""
    def parse(value, path):
        _object(value, path)
        record = cls()
        for key, attribute, check in fields:
            setattr(record, attribute, _field(value, key, path, check))
        return record
    return parse


def _records(parse):
    return lambda value, path: _list(value, path, parse)


def _weight(value, path):
    return _int(value, path, 0, 0xFFFF)


def _device_rule(value, path):
    rule = _record(DeviceRule, (("allow", "allow", _bool), ("type", "type", _string), ("major", "major", _int64),
                                ("minor", "minor", _int64), ("access", "access", _string)))(value, path)
    if rule.allow is None:
        raise SpecError(_join(path, "allow"), "is required")
    if (rule.type or "a") not in ("a", "b", "c"):  # null means absent
        raise SpecError(_join(path, "type"), f'unknown device type "{rule.type}"')
    if not set(rule.access or "rwm") <= set("rwm"):
        raise SpecError(_join(path, "access"), f'"{rule.access}" is not a combination of r, w, m')
    return rule


_throttle_devices = _records(_record(ThrottleDevice, (("major", "major", _int64), ("minor", "minor", _int64),
                                                      ("rate", "rate", _uint64))))
_RESOURCE_FIELDS = (
    ("devices", "devices", _records(_device_rule)),
    ("memory", "memory", _record(Memory, (
        ("limit", "limit", _int64), ("reservation", "reservation", _int64), ("swap", "swap", _int64),
        ("kernel", "kernel", _int64), ("kernelTCP", "kernel_tcp", _int64), ("swappiness", "swappiness", _uint64),
        ("disableOOMKiller", "disable_oom_killer", _bool), ("useHierarchy", "use_hierarchy", _bool),
        ("checkBeforeUpdate", "check_before_update", _bool)))),
    ("cpu", "cpu", _record(Cpu, (
        ("shares", "shares", _uint64), ("quota", "quota", _int64), ("burst", "burst", _uint64),
        ("period", "period", _uint64), ("realtimeRuntime", "realtime_runtime", _int64),
        ("realtimePeriod", "realtime_period", _uint64), ("cpus", "cpus", _cpu_list_text),
        ("mems", "mems", _cpu_list_text), ("idle", "idle", _int64)))),
    ("pids", "pids", _record(Pids, (("limit", "limit", _int64),))),
    ("blockIO", "block_io", _record(BlockIO, (
        ("weight", "weight", _weight), ("leafWeight", "leaf_weight", _weight),
        ("weightDevice", "weight_device", _records(_record(WeightDevice, (
            ("major", "major", _int64), ("minor", "minor", _int64), ("weight", "weight", _weight),
            ("leafWeight", "leaf_weight", _weight))))),
        ("throttleReadBpsDevice", "throttle_read_bps_device", _throttle_devices),
        ("throttleWriteBpsDevice", "throttle_write_bps_device", _throttle_devices),
        ("throttleReadIOPSDevice", "throttle_read_iops_device", _throttle_devices),
        ("throttleWriteIOPSDevice", "throttle_write_iops_device", _throttle_devices)))),
    ("hugepageLimits", "hugepage_limits", _records(_record(HugepageLimit, (
        ("pageSize", "page_size", _nonempty_string), ("limit", "limit", _uint64))))),
    ("network", "network", _record(Network, (
        ("classID", "class_id", _uint32),
        ("priorities", "priorities", _records(_record(InterfacePriority, (
            ("name", "name", _string), ("priority", "priority", _uint32)))))))),
    ("rdma", "rdma", _object),
    ("unified", "unified", _string_map),
)
_parse_resource_fields = _record(Resources, _RESOURCE_FIELDS)


def parse_resources(value, path="linux.resources"):
    """A linux.resources object (config.json's, or `slr update`'s document) -> Resources."""
    return _parse_resource_fields(value, path)


def seccomp_record(linux):
    """What a container records of its seccomp profiles (wherever they came from:
    load_for_create), for its later processes: apply_seccomp_record reads it back."""
    floor = linux.seccomp_floor
    return {"profile": linux.seccomp.to_json(), "floor": floor.to_json() if floor is not None else None}


def apply_seccomp_record(linux, record):
    floor = record.get("floor")
    linux.seccomp = parse_seccomp(record["profile"], "seccomp record")
    linux.seccomp_floor = parse_seccomp(floor, "seccomp record floor") if floor is not None else None


def merge_resources(config, update):
    """config.json (decoded) with the resources of an `slr update` document (validated
    by parse_resources) written over its linux.resources, section by section."""
    merged = config.setdefault("linux", {}).setdefault("resources", {})
    for section, settings in update.items():
        if isinstance(settings, dict) and isinstance(merged.get(section), dict):
            merged[section].update(settings)
        else:
            merged[section] = settings
    return config


def _seccomp_arg(value, path):
    _object(value, path)
    arg = SeccompArg()
    arg.index = _field(value, "index", path, lambda v, p: _int(v, p, 0, 5), required=True)
    arg.value = _field(value, "value", path, _uint64, required=True)
    arg.value_two = _field(value, "valueTwo", path, _uint64)
    arg.op = _choice(_field(value, "op", path, _string, required=True), _join(path, "op"),
                     SECCOMP_OPERATORS, "seccomp operator")
    return arg


def _seccomp_rule(value, path):
    _object(value, path)
    rule = SeccompRule()
    rule.names = _field(value, "names", path, _strings, required=True)
    if not rule.names:
        raise SpecError(_join(path, "names"), "must name at least one system call")
    rule.action = _choice(_field(value, "action", path, _string, required=True),
                          _join(path, "action"), SECCOMP_ACTIONS, "seccomp action")
    rule.errno_ret = _field(value, "errnoRet", path, _uint32)
    rule.args = _field(value, "args", path, _records(_seccomp_arg), [])
    return rule


def parse_seccomp(value, path):
    """A linux.seccomp object (config.json's, slr.conf's seccomp-default, an image's
    profile) -> Seccomp."""
    _object(value, path)
    profile = Seccomp()
    profile.default_action = _choice(_field(value, "defaultAction", path, _string, required=True),
                                     _join(path, "defaultAction"), SECCOMP_ACTIONS, "seccomp action")
    profile.default_errno_ret = _field(value, "defaultErrnoRet", path, _uint32)
    profile.architectures = _field(value, "architectures", path, _strings, [])
    for i, arch in enumerate(profile.architectures):
        _choice(arch, f"{path}.architectures[{i}]", SECCOMP_ARCHES, "seccomp architecture")
    profile.flags = _field(value, "flags", path, _strings, [])
    for i, flag in enumerate(profile.flags):
        _choice(flag, f"{path}.flags[{i}]", SECCOMP_FLAGS, "seccomp flag")
    profile.listener_path = _field(value, "listenerPath", path, _abs_path)
    profile.listener_metadata = _field(value, "listenerMetadata", path, _string)
    profile.syscalls = _field(value, "syscalls", path, _records(_seccomp_rule), [])
    if profile.notifies() and profile.listener_path is None:
        raise SpecError(_join(path, "listenerPath"), "is required when an action is SCMP_ACT_NOTIFY")
    if profile.default_action == "SCMP_ACT_NOTIFY":
        raise SpecError(_join(path, "defaultAction"), "SCMP_ACT_NOTIFY cannot be the default action")
    return profile


# The sysctls the kernel keeps per namespace, as runc allows them; any other key (say
# kernel.core_pattern, written through the container's fresh procfs by its init, still
# root on the host) would change the whole host.
_IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")


def _sysctl_namespace(key):
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key.startswith("net."):
        return "network"
    if key in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    return None


def settings_in_namespaces(spec):
    """{namespace type: what the container writes into that namespace} for the settings
    that belong to a namespace of the container (sysctl, hostname, domainname): written
    into a namespace joined by path that is the runtime's own, they would change the
    host's (namespaces.open_join_targets refuses that)."""
    settings = {}
    for key in spec.linux.sysctl:
        settings.setdefault(_sysctl_namespace(key), []).append(f"sysctl {key}")
    for name in ("hostname", "domainname"):
        if getattr(spec, name) is not None:
            settings.setdefault("uts", []).append(name)
    return settings


def _parse_sysctl(value, path):
    _string_map(value, path)
    for key in value:
        if not key or ".." in key or key.startswith(("/", ".")) or "\0" in key:
            raise SpecError(_join(path, key), "is not a sysctl name")
    return value


def _parse_personality(value, path):
    _object(value, path)
    domain = _field(value, "domain", path, _string, required=True)
    if domain not in ("LINUX", "LINUX32"):
        raise SpecError(_join(path, "domain"), f'unknown personality domain "{domain}"')
    return 0 if domain == "LINUX" else 0x0008


def _parse_time_offsets(value, path):
    _object(value, path)
    offsets = {}
    for clock, item in value.items():
        if clock not in ("monotonic", "boottime"):
            raise SpecError(_join(path, clock), f'unknown clock "{clock}"')
        item_path = _join(path, clock)
        _object(item, item_path)
        offsets[clock] = (_field(item, "secs", item_path, _int64, 0),
                          _field(item, "nanosecs", item_path, lambda v, p: _int(v, p, 0, 999999999), 0))
    return offsets


def _parse_linux(value, path):
    _object(value, path)
    lx = Linux()
    lx.namespaces = _field(value, "namespaces", path, _parse_namespaces, [])
    lx.uid_mappings = _field(value, "uidMappings", path, _parse_id_mappings, [])
    lx.gid_mappings = _field(value, "gidMappings", path, _parse_id_mappings, [])
    user_ns = lx.namespace("user")
    if (lx.uid_mappings or lx.gid_mappings) and (user_ns is None or user_ns.path):
        raise SpecError(_join(path, "uidMappings"), "id mappings need a new user namespace")
    if user_ns is not None and user_ns.path is None and not (lx.uid_mappings and lx.gid_mappings):
        raise SpecError(_join(path, "uidMappings"), "a new user namespace needs uidMappings and gidMappings")
    if lx.namespace("mount") is None and user_ns is not None:
        # Without one, the container inherits the runtime's mount namespace (as the spec
        # says and runc and crun do; rootfs.prepare keeps its mounts off the host's
        # root), which a user namespace has no right to mount in.
        raise SpecError(_join(path, "namespaces"), "a user namespace needs a mount namespace (new or joined by path)")
    lx.devices = _field(value, "devices", path, _parse_devices, [])
    lx.cgroups_path = _field(value, "cgroupsPath", path, _string)
    if lx.cgroups_path is not None and (".." in lx.cgroups_path.split("/") or ":" in lx.cgroups_path):
        raise SpecError(_join(path, "cgroupsPath"), f'"{lx.cgroups_path}" is not a cgroupfs path '
                        "(systemd slice:prefix:name paths need --systemd-cgroup, not supported)")
    lx.resources = _field(value, "resources", path, parse_resources) or parse_resources({})
    lx.rootfs_propagation = _field(value, "rootfsPropagation", path, _string)
    if lx.rootfs_propagation is not None:
        _choice(lx.rootfs_propagation, _join(path, "rootfsPropagation"), ROOTFS_PROPAGATIONS, "propagation")
    lx.seccomp = _field(value, "seccomp", path, parse_seccomp)
    lx.seccomp_floor = None  # slr.conf's seccomp-default under an image's profile (container.py)
    lx.sysctl = _field(value, "sysctl", path, _parse_sysctl, {})
    lx.masked_paths = _field(value, "maskedPaths", path, lambda v, p: _list(v, p, _abs_path), [])
    lx.readonly_paths = _field(value, "readonlyPaths", path, lambda v, p: _list(v, p, _abs_path), [])
    lx.mount_label = _field(value, "mountLabel", path, _string)
    lx.personality = _field(value, "personality", path, _parse_personality)
    lx.time_offsets = _field(value, "timeOffsets", path, _parse_time_offsets, {})
    if lx.time_offsets and (lx.namespace("time") is None or lx.namespace("time").path):
        raise SpecError(_join(path, "timeOffsets"), "needs a new time namespace")
    for key in lx.sysctl:
        ns_type = _sysctl_namespace(key)
        if ns_type is None:
            raise SpecError(_join(_join(path, "sysctl"), key), "is not in a namespace of the container: "
                            "setting it would change the host")
        if lx.namespace(ns_type) is None:
            article = "an" if ns_type == "ipc" else "a"
            raise SpecError(_join(path, "namespaces"), f"sysctl {key} needs {article} {ns_type} namespace")
    return lx


def parse(config, bundle, source="config.json", rootless=False):
    """Validate a decoded config.json; returns a Spec or raises SpecError."""
    try:
        return _parse(config, bundle, rootless)
    except SpecError as exc:
        if source != "config.json":
            raise SpecError(exc.path, exc.message, source) from None
        raise


def _parse(config, bundle, rootless):
    _object(config, "")
    spec = Spec()
    spec.raw = config
    spec.bundle = bundle
    spec.oci_version = _field(config, "ociVersion", "", _parse_version, required=True)
    root = _field(config, "root", "", _object, required=True)
    root_path = _field(root, "path", "root", lambda v, p: _nonempty_string(_path(v, p), p), required=True)
    spec.root_path = os.path.normpath(os.path.join(bundle, root_path))
    spec.root_readonly = _field(root, "readonly", "root", _bool, False)
    spec.process = _field(config, "process", "", lambda v, p: parse_process(v, p, rootless))
    spec.hostname = _field(config, "hostname", "", _uts_name)
    spec.domainname = _field(config, "domainname", "", _uts_name)
    spec.mounts = _field(config, "mounts", "", lambda v, p: _list(v, p, lambda m, mp: _parse_mount(m, mp, bundle)), [])
    spec.hooks = _field(config, "hooks", "", _parse_hooks, {})
    spec.annotations = _field(config, "annotations", "", _string_map, {})
    spec.linux = _field(config, "linux", "", _parse_linux)
    if spec.linux is None:
        raise SpecError("linux", "is required: this runtime runs Linux containers")
    uts = spec.linux.namespace("uts")
    if (spec.hostname or spec.domainname) and (uts is None):
        name = "hostname" if spec.hostname else "domainname"
        raise SpecError(name, f"setting a {name} needs a uts namespace")
    if uts is None:
        # "" without a uts namespace (engines write it for the host's) asks for nothing;
        # set, it would empty the host's names.
        spec.hostname = spec.domainname = None
    if spec.root_path == "/":
        raise SpecError("root.path", "the host's / cannot be a container's rootfs")
    return spec


def check_rootfs(spec):
    """The rootfs must exist and be a directory (checked at create, not at parse)."""
    try:
        st = os.stat(spec.root_path)
    except OSError as exc:
        raise SpecError("root.path", f"{spec.root_path}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SpecError("root.path", f"{spec.root_path} is not a directory")
    if os.path.realpath(spec.root_path) == "/":
        raise SpecError("root.path", "the host's / cannot be a container's rootfs")


def load_process(path, rootless):
    """`slr exec -p FILE`: the process document FILE, read and validated."""
    try:
        raw = jsonlite.load_file(path)
    except (OSError, ValueError) as exc:
        raise SlrError(f"{path}: {exc}") from None
    try:
        return parse_process(raw, "", rootless)
    except SpecError as exc:
        raise SlrError(exc.located(path)) from None


def exec_process(base, overrides, rootless):
    """`slr exec`'s process without -p: the container's own process (`base`, its saved
    config.json) with the command line's settings (`overrides`, an options.ExecOptions)
    on top, as runc builds it. Errors are SpecErrors of the command: located("exec")."""
    raw = dict(base.raw["process"])
    raw["args"] = overrides.args
    raw["terminal"] = bool(overrides.tty)
    if overrides.env:
        raw["env"] = list(raw.get("env", [])) + overrides.env
    if overrides.cwd:
        raw["cwd"] = overrides.cwd
    if overrides.user:
        uid, _, gid = overrides.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise SpecError("", f"--user {overrides.user!r} must be UID[:GID]")
        raw["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    # Flags that change who the process is or how it is confined are applied or refused,
    # never ignored: a process run without the groups or profile asked for is a surprise.
    if overrides.additional_gids:
        gids = overrides.additional_gids
        if not all(g.isdigit() for g in gids):
            raise SpecError("", f"--additional-gids {','.join(gids)}: must be numeric group ids")
        raw["user"] = dict(raw.get("user") or {}, additionalGids=[int(g) for g in gids])
    if overrides.apparmor:
        raw["apparmorProfile"] = overrides.apparmor
    if overrides.process_label:
        raw["selinuxLabel"] = overrides.process_label
    if overrides.cgroup:
        raise SpecError("", "--cgroup is not supported: the process joins the container's cgroup")
    if overrides.no_new_privs:
        raw["noNewPrivileges"] = True
    if overrides.cap:
        caps = dict(raw.get("capabilities") or {})
        for name in ("bounding", "effective", "permitted"):
            caps[name] = list(caps.get(name, [])) + overrides.cap
        raw["capabilities"] = caps
    return parse_process(raw, "process", rootless)


def load_bundle(bundle, rootless=False):
    """Read and validate <bundle>/config.json."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        raw = files.read_regular(path, jsonlite.MAX_DOCUMENT)
    except OSError as exc:
        raise SpecError("", f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SpecError("", f"{path} {exc}") from None
    try:
        config = jsonlite.loads(raw)
    except (jsonlite.JSONError, UnicodeDecodeError) as exc:
        raise SpecError("", f"invalid JSON: {exc}") from None
    return parse(config, bundle, rootless=rootless)
