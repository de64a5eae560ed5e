"""Linux capabilities: the five sets of process.capabilities, through python-prctl.

Through its C module `_prctl`: the `prctl` wrapper module builds objects for every
capability and prctl option at import, ~2 ms of every container start for one call.
"""

import _prctl

from slruntime import files, libc
from slruntime.errors import SlrError

# python-prctl only knows the capabilities of the libcap it was built against.
_KNOWN = {getattr(_prctl, name) for name in dir(_prctl)
          if name.startswith("CAP_") and name not in ("CAP_EFFECTIVE", "CAP_INHERITABLE", "CAP_PERMITTED")}


def drop_bounding(caps):
    """Drop every capability not in the bounding set (needs CAP_SETPCAP: do it
    before changing user)."""
    keep = set(caps.get("bounding", ()))
    for cap in range(_LAST_CAP + 1):
        if cap not in keep:
            try:
                libc.prctl(libc.PR_CAPBSET_DROP, cap)
            except OSError as exc:
                raise SlrError(f"capabilities: dropping {cap} from the bounding set: {exc}") from None


def apply(caps):
    """Set the effective, permitted and inheritable sets, then raise the ambient ones."""
    unknown = sorted({c for name in ("effective", "permitted", "inheritable", "ambient")
                      for c in caps.get(name, ()) if c not in _KNOWN})
    if unknown:
        raise SlrError(f"capabilities: {unknown} unknown to this python-prctl build")
    raised = []
    cleared = []
    for name in ("effective", "permitted", "inheritable"):  # the order _prctl.set_caps takes
        wanted = set(caps.get(name, ()))
        raised.append(sorted(wanted))
        cleared.append(sorted(_KNOWN - wanted))
    try:
        _prctl.set_caps(*raised, *cleared)
    except OSError as exc:
        raise SlrError(f"capabilities: capset: {exc.strerror}{_ungrantable(raised)}") from None
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    raisable = set(caps.get("permitted", ())) & set(caps.get("inheritable", ()))
    for cap in caps.get("ambient", ()):
        # The kernel only raises what is permitted and inheritable; runc and crun
        # skip the rest silently, and configs from `runc spec` rely on that.
        if cap in raisable:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, cap)


def _ungrantable(raised):
    """Why capset refused, when the cause is a capability outside the bounding set
    (the host's, or the config's own): " (not in the bounding set: CAP_...)"."""
    from slruntime.spec import CAPABILITIES

    missing = sorted({cap for caps in raised for cap in caps if not libc.prctl(libc.PR_CAPBSET_READ, cap)})
    if not missing:
        return ""
    names = [CAPABILITIES[cap] if cap < len(CAPABILITIES) else str(cap) for cap in missing]
    return f" (not in the bounding set: {', '.join(names)})"


def _last_cap():
    try:
        return int(files.read("/proc/sys/kernel/cap_last_cap"))
    except (OSError, ValueError):
        return max(_KNOWN)


# Read at import, in the runtime, from the host's /proc: when drop_bounding runs, /proc
# is the container's, and without a procfs there, whatever file the image put at
# /proc/sys/kernel/cap_last_cap ("0") would keep every capability in the bounding set,
# and a root process gets its whole bounding set back at its next execve.
_LAST_CAP = _last_cap()
