"""The FGAC policy file: parsing, validation and the allow/deny decisions.

Line-oriented so every error names its line (format: README.md). A `container` line
selects containers; the `mount`, `mknod` and `umount` lines after it are what those
containers may do. Every rule is an allow rule; whatever no rule allows is denied.
"""

import fnmatch
import pwd
import shlex

from slruntime import libc
from slruntime.errors import SlrError
from slruntime.fgac.resolve import is_within


class PolicyError(SlrError):
    pass


MOUNT_FLAGS = {
    "ro": libc.MS_RDONLY,
    "rdonly": libc.MS_RDONLY,
    "nosuid": libc.MS_NOSUID,
    "nodev": libc.MS_NODEV,
    "noexec": libc.MS_NOEXEC,
    "sync": libc.MS_SYNCHRONOUS,
    "dirsync": libc.MS_DIRSYNC,
    "mandlock": libc.MS_MANDLOCK,
    "noatime": libc.MS_NOATIME,
    "nodiratime": libc.MS_NODIRATIME,
    "relatime": libc.MS_RELATIME,
    "strictatime": libc.MS_STRICTATIME,
    "lazytime": libc.MS_LAZYTIME,
    "nosymfollow": libc.MS_NOSYMFOLLOW,
    "bind": libc.MS_BIND,
    "rec": libc.MS_REC,
}
# Operations whose meaning is not "attach this filesystem here"; refused outright.
UNSUPPORTED_MOUNT_FLAGS = (
    libc.MS_REMOUNT | libc.MS_MOVE | libc.MS_SHARED | libc.MS_PRIVATE | libc.MS_SLAVE | libc.MS_UNBINDABLE
)
_MS_MGC_MSK, _MS_MGC_VAL = 0xFFFF0000, 0xC0ED0000  # pre-2.4 magic some callers still pass

UMOUNT_FLAGS = {"force": 1, "detach": libc.MNT_DETACH, "expire": 4, "nofollow": 8}
UMOUNT_NOFOLLOW = 8

S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000
NODE_TYPES = {"c": S_IFCHR, "b": S_IFBLK}


def flag_names(flags, table):
    """Readable flag list for the decision log; unknown bits as a hex number."""
    names, seen = [], 0
    for name, bit in table.items():
        if flags & bit and not seen & bit:
            names.append(name)
            seen |= bit
    if flags & ~seen:
        names.append(hex(flags & ~seen))
    return names


def normalise_mount_flags(flags):
    if flags & _MS_MGC_MSK == _MS_MGC_VAL:
        flags &= ~_MS_MGC_MSK
    return flags & ~libc.MS_SILENT  # only silences kernel log messages


class MountRule:
    def __init__(self, where, fstype, source, target, flags, require, data):
        self.where, self.fstype, self.source, self.target = where, fstype, source, target
        self.flags, self.require, self.data = flags, require, data

    def mismatch(self, req):
        """None if this rule allows `req` (a MountRequest), else why not."""
        if not is_within(req.target, self.target):
            return f"{self.where}: target {req.target} not within {self.target}"
        if (self.fstype == "bind") != req.is_bind:
            return f"{self.where}: fstype {'bind' if req.is_bind else req.fstype} != {self.fstype}"
        if not req.is_bind and req.fstype != self.fstype:
            return f"{self.where}: fstype {req.fstype} != {self.fstype}"
        if req.is_bind:
            if not is_within(req.source, self.source):
                return f"{self.where}: bind source {req.source} not within {self.source}"
        elif not fnmatch.fnmatchcase(req.source or "", self.source):
            return f"{self.where}: source {req.source} does not match {self.source}"
        allowed = self.flags | (libc.MS_BIND if req.is_bind else 0)
        if req.flags & ~allowed:
            return f"{self.where}: flags {','.join(flag_names(req.flags & ~allowed, MOUNT_FLAGS))} not allowed"
        if self.require & ~req.flags:
            return f"{self.where}: flags {','.join(flag_names(self.require & ~req.flags, MOUNT_FLAGS))} required"
        for option in (req.data or "").split(","):
            if option and not any(fnmatch.fnmatchcase(option, pattern) for pattern in self.data):
                return f"{self.where}: data option {option!r} not allowed"
        return None


class MknodRule:
    def __init__(self, where, path, node_type, major, minor, mode):
        self.where, self.path, self.node_type = where, path, node_type
        self.major, self.minor, self.mode = major, minor, mode

    def mismatch(self, path, mode, major, minor):
        if not fnmatch.fnmatchcase(path, self.path):
            return f"{self.where}: path {path} does not match {self.path}"
        if mode & S_IFMT != self.node_type:
            return f"{self.where}: node type differs"
        if self.major is not None and major != self.major or self.minor is not None and minor != self.minor:
            return f"{self.where}: device {major}:{minor} not allowed"
        if mode & 0o7777 & ~self.mode:
            return f"{self.where}: mode {mode & 0o7777:04o} exceeds {self.mode:04o}"
        return None


class UmountRule:
    def __init__(self, where, target, flags):
        self.where, self.target, self.flags = where, target, flags

    def mismatch(self, target, flags):
        if not is_within(target, self.target):
            return f"{self.where}: target {target} not within {self.target}"
        if flags & ~self.flags:
            return f"{self.where}: flags {','.join(flag_names(flags & ~self.flags, UMOUNT_FLAGS))} not allowed"
        return None


class MountRequest:
    __slots__ = ("source", "target", "fstype", "flags", "data", "is_bind")

    def __init__(self, source, target, fstype, flags, data):
        self.source, self.target, self.fstype = source, target, fstype
        self.flags, self.data = flags, data
        self.is_bind = bool(flags & libc.MS_BIND)


class Rules:
    """The rules that apply to one container: the union of every matching block."""

    def __init__(self, blocks):
        self.blocks = [b.where for b in blocks]
        self.mounts = [r for b in blocks for r in b.mounts]
        self.mknods = [r for b in blocks for r in b.mknods]
        self.umounts = [r for b in blocks for r in b.umounts]

    def first_allowing(self, rules, *request):
        """(rule, None) for the first rule allowing the request, else (None, reasons)."""
        reasons = []
        for rule in rules:
            why = rule.mismatch(*request)
            if why is None:
                return rule, None
            reasons.append(why)
        return None, "; ".join(reasons) or "no rule for this call"


class ContainerBlock:
    def __init__(self, where):
        self.where = where
        self.ids, self.bundles, self.metadata, self.uids, self.annotations = [], [], [], [], []
        self.mounts, self.mknods, self.umounts = [], [], []

    def matches(self, state, metadata, peer_uid):
        annotations = state.get("annotations") or {}
        return (
            all(fnmatch.fnmatchcase(state["id"], g) for g in self.ids)
            and all(fnmatch.fnmatchcase(state["bundle"], g) for g in self.bundles)
            and all(fnmatch.fnmatchcase(metadata or "", g) for g in self.metadata)
            and all(peer_uid == uid for uid in self.uids)
            and all(key in annotations and fnmatch.fnmatchcase(annotations[key], g) for key, g in self.annotations)
        )


class Policy:
    def __init__(self, blocks):
        self.blocks = blocks

    def rules_for(self, state, metadata, peer_uid):
        """Rules for a container, or None if no block selects it."""
        blocks = [b for b in self.blocks if b.matches(state, metadata, peer_uid)]
        return Rules(blocks) if blocks else None


# ---------------------------------------------------------------- parsing


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc}") from None
    return parse(text, path)


def parse(text, source="policy"):
    blocks = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{source}:{number}"
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise PolicyError(f"{where}: {exc}") from None
        if not words:
            continue
        keyword, fields = words[0], _fields(where, words[0], words[1:])
        if keyword == "container":
            blocks.append(_container(where, fields))
            continue
        if keyword not in _RULE_PARSERS:
            raise PolicyError(f"{where}: unknown keyword {keyword!r} (expected container, mount, mknod or umount)")
        if not blocks:
            raise PolicyError(f"{where}: {keyword}: rule before any 'container' line")
        _RULE_PARSERS[keyword](where, fields, blocks[-1])
    return Policy(blocks)


class _Fields:
    """The KEY=VALUE words of one line; errors name the line, keyword and field."""

    def __init__(self, where, keyword, pairs):
        self.where, self.keyword, self.pairs = where, keyword, pairs

    def error(self, key, problem):
        return PolicyError(f"{self.where}: {self.keyword}: field '{key}': {problem}")

    def take(self, key, required=False):
        values = self.pairs.pop(key, [])
        if len(values) > 1:
            raise self.error(key, "given more than once")
        if not values:
            if required:
                raise self.error(key, "missing")
            return None
        if not values[0]:
            raise self.error(key, "empty")
        return values[0]

    def take_all(self, key):
        return self.pairs.pop(key, [])

    def done(self):
        if self.pairs:
            raise self.error(next(iter(self.pairs)), "unknown field")


def _fields(where, keyword, words):
    pairs = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise PolicyError(f"{where}: {keyword}: {word!r} is not KEY=VALUE")
        pairs.setdefault(key, []).append(value)
    return _Fields(where, keyword, pairs)


def _absolute(fields, key, value):
    if value is not None and not value.startswith("/"):
        raise fields.error(key, f"{value!r} is not an absolute path")
    return value


def _flag_set(fields, key, table, value):
    bits = 0
    for name in (value or "").split(","):
        if name not in table:
            raise fields.error(key, f"unknown flag {name!r} (known: {', '.join(table)})")
        bits |= table[name]
    return bits


def _container(where, fields):
    block = ContainerBlock(where)
    block.ids = fields.take_all("id")
    block.bundles = fields.take_all("bundle")
    block.metadata = fields.take_all("metadata")
    for value in fields.take_all("annotation"):
        key, eq, pattern = value.partition("=")
        if not eq or not key:
            raise fields.error("annotation", f"{value!r} is not KEY=VALUE")
        block.annotations.append((key, pattern))
    for value in fields.take_all("uid"):
        if value.isdigit():
            block.uids.append(int(value))
            continue
        try:
            block.uids.append(pwd.getpwnam(value).pw_uid)
        except KeyError:
            raise fields.error("uid", f"no such user {value!r}") from None
    fields.done()
    if not (block.ids or block.bundles or block.metadata or block.annotations or block.uids):
        raise PolicyError(f"{where}: container: no selector (id=, bundle=, annotation=, metadata= or uid=)")
    return block


def _mount(where, fields, block):
    fstype = fields.take("fstype", required=True)
    source = fields.take("source", required=True)
    if fstype == "bind":
        _absolute(fields, "source", source)
    target = _absolute(fields, "target", fields.take("target", required=True))
    flags_value, require_value = fields.take("flags"), fields.take("require")
    flags = _flag_set(fields, "flags", MOUNT_FLAGS, flags_value) if flags_value else 0
    require = _flag_set(fields, "require", MOUNT_FLAGS, require_value) if require_value else 0
    if fstype != "bind" and (flags | require) & (libc.MS_BIND | libc.MS_REC):
        raise fields.error("flags", "bind and rec need fstype=bind")
    data = fields.take("data")
    fields.done()
    patterns = data.split(",") if data else []
    block.mounts.append(MountRule(where, fstype, source, target, flags | require, require, patterns))


def _device_part(fields, text):
    if text == "*":
        return None
    if not text.isdigit():
        raise fields.error("dev", f"{text!r} is not a number or *")
    return int(text)


def _mknod(where, fields, block):
    path = _absolute(fields, "path", fields.take("path", required=True))
    node_type = fields.take("type", required=True)
    if node_type not in NODE_TYPES:
        raise fields.error("type", f"{node_type!r} is not c or b")
    major, colon, minor = fields.take("dev", required=True).partition(":")
    if not colon:
        raise fields.error("dev", "expected MAJOR:MINOR")
    mode_text = fields.take("mode", required=True)
    try:
        mode = int(mode_text, 8)
    except ValueError:
        raise fields.error("mode", f"{mode_text!r} is not an octal mode") from None
    if mode & ~0o7777:
        raise fields.error("mode", f"{mode_text!r} has bits beyond 07777")
    fields.done()
    rule = MknodRule(where, path, NODE_TYPES[node_type], _device_part(fields, major), _device_part(fields, minor), mode)
    block.mknods.append(rule)


def _umount(where, fields, block):
    target = _absolute(fields, "target", fields.take("target", required=True))
    value = fields.take("flags")
    flags = _flag_set(fields, "flags", UMOUNT_FLAGS, value) if value else 0
    fields.done()
    block.umounts.append(UmountRule(where, target, flags))


_RULE_PARSERS = {"mount": _mount, "mknod": _mknod, "umount": _umount}
