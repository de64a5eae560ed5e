"""/etc/slr/slr.conf: the runtime's own defaults (the layer installs it).

key=value lines, `#` comments; the command line wins over the file. SLR_CONFIG names
another file (an empty value: none). Keys:
  root               state directory (runc's --root)
  log / log-format   runc's --log / --log-format
  seccomp-default    linux.seccomp profile for containers whose config.json has none;
                     a floor under an image's own profile (annotation
                     org.slruntime.seccomp.profile): both are loaded, the image's can
                     only narrow it
  housekeeping-cpus  CPU list the runtime's own work runs on (real-time boards keep
                     the isolated cores for containers), e.g. 0 or 0-1
"""

import os

from slruntime.errors import SlrError

DEFAULT_PATH = "/etc/slr/slr.conf"
KEYS = ("root", "log", "log-format", "seccomp-default", "housekeeping-cpus")


def load(path=None):
    path = os.environ.get("SLR_CONFIG", DEFAULT_PATH) if path is None else path
    if not path:
        return {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SlrError(f"{path}: {exc.strerror}") from None
    settings = {}
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in KEYS:
            raise SlrError(f"{path}:{number}: expected one of {', '.join(KEYS)} as key=value, got {line!r}")
        settings[key] = value
    return settings


def default_seccomp(settings):
    """The seccomp-default profile (a spec.Seccomp), or None."""
    path = settings.get("seccomp-default")
    if not path:
        return None
    from slruntime import jsonlite, spec

    try:
        profile = jsonlite.load_file(path)
    except (OSError, ValueError) as exc:
        raise SlrError(f"seccomp-default {path}: {exc}") from None
    return spec.parse_seccomp(profile, "seccomp-default")


def pin_to_housekeeping(settings):
    """Run the runtime (and the container setup it forks) on the housekeeping CPUs;
    the container's process moves to its own CPUs with execCPUAffinity or cpuset
    (release_housekeeping). Returns whether it pinned."""
    cpus = settings.get("housekeeping-cpus")
    if not cpus:
        return False
    from slruntime import spec

    try:
        wanted = spec.parse_cpu_list(cpus, "housekeeping-cpus")
    except spec.SpecError as exc:
        raise SlrError(f"slr.conf: {exc}") from None
    try:
        os.sched_setaffinity(0, wanted)
    except OSError as exc:
        raise SlrError(f"slr.conf: housekeeping-cpus {cpus}: {exc.strerror}") from None
    return True


def release_housekeeping():
    """Give a container process every CPU again (its cpuset still limits it)."""
    try:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    except OSError:
        pass
