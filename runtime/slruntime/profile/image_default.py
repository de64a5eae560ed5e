"""The image-default seccomp profile, stored with the bundle.

A bundle carries its generated profile as a file (by default `seccomp.profile.json`, the
OCI `linux.seccomp` object) and names it in config.json:

    "annotations": {"org.slruntime.seccomp.profile": "seccomp.profile.json"}

The path is relative to the bundle directory. The runtime applies that profile when
config.json has no `linux.seccomp` of its own, on top of slr.conf's seccomp-default
(which it can narrow, not widen). Reading it is runtime code, in
slruntime.seccomp_default: this package is the host-side `slr profile`, which the
compact binary leaves out; `install` is what the command adds.
"""

import os

from slruntime import jsonlite
from slruntime.seccomp_default import ANNOTATION, load_image_profile as load  # noqa: F401

DEFAULT_FILE = "seccomp.profile.json"


def install(bundle_dir, relative=DEFAULT_FILE):
    """Name `relative` as the image-default profile in the bundle's config.json."""
    config_path = os.path.join(bundle_dir, "config.json")
    try:
        with open(config_path, encoding="utf-8") as stream:
            config = jsonlite.loads(stream.read())
    except OSError as err:
        raise ValueError(f"cannot read {config_path}: {err.strerror}") from None
    except ValueError as err:
        raise ValueError(f"{config_path} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: not a JSON object")
    annotations = config.setdefault("annotations", {})
    if not isinstance(annotations, dict):
        raise ValueError(f"{config_path}: annotations: not an object")
    annotations[ANNOTATION] = relative
    mode = os.stat(config_path).st_mode & 0o777
    jsonlite.write_file_atomic(config_path, config, indent=2, mode=mode)
