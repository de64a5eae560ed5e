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


def read_config(bundle_dir):
    """The bundle's config.json as a dict, for `slr profile`: a regular file (not a
    symlink, FIFO or device) of bounded size. ValueError names the problem in one line."""
    from slruntime.profile import safeio    # not on the container start path

    config_path = os.path.join(bundle_dir, "config.json")
    try:
        config = jsonlite.loads(safeio.read_regular(config_path, jsonlite.MAX_DOCUMENT))
    except safeio.RefusedFile as err:
        raise ValueError(str(err)) from None
    except OSError as err:
        raise ValueError(f"cannot read {config_path}: {err.strerror}") from None
    except ValueError as err:
        raise ValueError(f"{config_path} is not valid JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"{config_path} is not valid JSON: nested too deeply") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: not a JSON object")
    return config


def install(bundle_dir, relative=DEFAULT_FILE):
    """Name `relative` as the image-default profile in the bundle's config.json, which is
    rewritten as a new file renamed into place (never through a link the bundle carries)."""
    from slruntime.profile import safeio

    config_path = os.path.join(bundle_dir, "config.json")
    config = read_config(bundle_dir)
    annotations = config.setdefault("annotations", {})
    if not isinstance(annotations, dict):
        raise ValueError(f"{config_path}: annotations: not an object")
    annotations[ANNOTATION] = relative
    try:
        text = jsonlite.dumps(config, indent=2)
    except RecursionError:
        raise ValueError(f"{config_path}: nested too deeply to be rewritten") from None
    try:
        safeio.write_file(config_path, text.encode())
    except OSError as err:
        raise ValueError(f"cannot write {config_path}: {err.strerror}") from None
