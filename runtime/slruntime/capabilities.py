"""Linux capabilities: the five sets of process.capabilities, through python-prctl."""

import prctl

from slruntime import libc
from slruntime.errors import SlrError

# python-prctl only knows the capabilities of the libcap it was built against.
_KNOWN = set(prctl.ALL_CAPS)


def drop_bounding(caps):
    """Drop every capability not in the bounding set (needs CAP_SETPCAP: do it
    before changing user)."""
    keep = set(caps.get("bounding", ()))
    last = _last_cap()
    for cap in range(last + 1):
        if cap not in keep:
            try:
                prctl.capbset_drop(cap) if cap in _KNOWN else libc.prctl(24, cap)  # PR_CAPBSET_DROP
            except (OSError, ValueError) as exc:
                raise SlrError(f"capabilities: dropping {cap} from the bounding set: {exc}") from None


def apply(caps):
    """Set the effective, permitted and inheritable sets, then raise the ambient ones."""
    unknown = sorted({c for name in ("effective", "permitted", "inheritable", "ambient")
                      for c in caps.get(name, ()) if c not in _KNOWN})
    if unknown:
        raise SlrError(f"capabilities: {unknown} unknown to this python-prctl build")
    flags = (("effective", prctl.CAP_EFFECTIVE), ("permitted", prctl.CAP_PERMITTED),
             ("inheritable", prctl.CAP_INHERITABLE))
    args = []
    for name, flag in flags:
        wanted = set(caps.get(name, ()))
        args.append((sorted(wanted), flag, True))
        args.append((sorted(_KNOWN - wanted), flag, False))
    try:
        prctl.set_caps(*args)
    except OSError as exc:
        raise SlrError(f"capabilities: capset: {exc.strerror}") from None
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    raisable = set(caps.get("permitted", ())) & set(caps.get("inheritable", ()))
    for cap in caps.get("ambient", ()):
        # The kernel only raises what is permitted and inheritable; runc and crun
        # skip the rest silently, and configs from `runc spec` rely on that.
        if cap in raisable:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, cap)


def _last_cap():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(_KNOWN)
