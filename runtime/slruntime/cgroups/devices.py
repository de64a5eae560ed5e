"""A container's device policy: which device nodes it may read, write and create.

linux.resources.devices, then the devices every container may use (as runc and crun
add them) and linux.devices, are evaluated in order with the semantics of the cgroup
v1 devices controller (an "a" rule resets the whole policy to allow or deny all, the
other rules add or remove exceptions; the later rule wins). Each cgroup version
enforces the outcome its way (Cgroup.set_devices): v1 writes it to the devices
controller, v2 compiles it to an eBPF program (v2/device_program.py).
"""

from slruntime.errors import SlrError

# What every container may use whatever its rules say (as runc): mknod of any node
# (opening one still needs a rule), the standard character devices and ptys.
DEFAULT_ALLOWED = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 7, "rwm"), ("c", 1, 8, "rwm"),
    ("c", 1, 9, "rwm"), ("c", 5, 0, "rwm"), ("c", 5, 1, "rwm"), ("c", 5, 2, "rwm"),
    ("c", 136, None, "rwm"),
)


class DeviceError(SlrError):
    pass


class Rule:
    """One device rule: type "a", "b" or "c"; major/minor None for any; access a
    subset of "rwm". `origin` names it in errors (a JSON path or "default")."""
    __slots__ = ("allow", "type", "major", "minor", "access", "origin")

    def __init__(self, allow, kind, major, minor, access, origin):
        self.allow, self.type, self.major, self.minor = allow, kind, major, minor
        self.access, self.origin = access, origin

    def describe(self):
        number = lambda n: "*" if n is None else str(n)
        return f"{self.type} {number(self.major)}:{number(self.minor)} {self.access}"


def _number(value, origin, what):
    if value is None or value == -1:  # null or -1: any, as in the spec
        return None
    if not 0 <= value <= 0xFFFFFFFF:
        raise DeviceError(f"{origin}.{what}: {value} is not a device number (-1 means any)")
    return value


def rules(resource_rules, linux_devices, origin="config.json: linux.resources.devices"):
    """The rules of a container, in order: its own (linux.resources.devices, spec.DeviceRule
    records), then what must stay allowed."""
    result = []
    for i, rule in enumerate(resource_rules or ()):
        path = f"{origin}[{i}]"
        access = "".join(c for c in "rwm" if c in (rule.access or "rwm"))
        result.append(Rule(rule.allow, rule.type or "a", _number(rule.major, path, "major"),
                           _number(rule.minor, path, "minor"), access, path))
    result += [Rule(True, t, ma, mi, a, "the devices every container gets") for t, ma, mi, a in DEFAULT_ALLOWED]
    for i, device in enumerate(linux_devices or ()):
        if device.type in ("c", "b", "u"):  # "u" (unbuffered) is a character device; "p" needs no rule
            path = f"config.json: linux.devices[{i}]"
            result.append(Rule(True, "b" if device.type == "b" else "c", _number(device.major, path, "major"),
                               _number(device.minor, path, "minor"), "rwm", path))
    return result


class Policy:
    """The outcome of a rule list, as the v1 controller keeps it: a default (allow or
    deny every device) and exceptions to it, keyed by (type, major, minor)."""

    def __init__(self, rule_list):
        self.default_allow = False  # no rule allows nothing (as in runc and crun) but the defaults
        self.exceptions = {}
        for rule in rule_list:
            self._apply(rule)

    def _apply(self, rule):
        if rule.type == "a":  # "a" means every device and access, whatever else it says
            self.default_allow = rule.allow
            self.exceptions = {}
            return
        key = (rule.type, rule.major, rule.minor)
        if rule.allow != self.default_allow:
            self.exceptions[key] = "".join(c for c in "rwm" if c in self.exceptions.get(key, "") + rule.access)
            return
        # A rule agreeing with the default removes access from the exception of exactly
        # its device: v1 ignores one that falls inside a wildcard exception, which would
        # leave the access the rule takes away; refused, as runc does.
        for other in ((rule.type, None, rule.minor), (rule.type, rule.major, None), (rule.type, None, None)):
            overlap = "".join(c for c in self.exceptions.get(other, "") if c in rule.access)
            if other != key and overlap:
                held = Rule(not rule.allow, other[0], other[1], other[2], self.exceptions[other], "")
                raise DeviceError(f"{rule.origin}: cannot {'allow' if rule.allow else 'deny'} {rule.describe()}: "
                                  f"the earlier wildcard rule {held.describe()} covers it (cgroup device rules "
                                  "cannot cut a hole in a wildcard; list the wildcard after it)")
        remaining = "".join(c for c in self.exceptions.get(key, "") if c not in rule.access)
        if remaining:
            self.exceptions[key] = remaining
        else:
            self.exceptions.pop(key, None)
