"""The image-default seccomp profile, stored with the bundle.

A bundle carries its generated profile as a file (by default `seccomp.profile.json`, the
OCI `linux.seccomp` object) and names it in config.json:

    "annotations": {"org.slruntime.seccomp.profile": "seccomp.profile.json"}

The path is relative to the bundle directory. The runtime applies that profile when
config.json has no `linux.seccomp` of its own, on top of slr.conf's seccomp-default
(which it can narrow, not widen: container.py). This module is imported on container
start: it uses only os and the runtime's lean JSON.
"""

import os

from slruntime import files, jsonlite

ANNOTATION = "org.slruntime.seccomp.profile"
DEFAULT_FILE = "seccomp.profile.json"


def load(bundle_dir, annotations):
    """The linux.seccomp object the annotation names, or None without the annotation.

    Raises ValueError (one line naming the problem) for a path escaping the bundle, a
    missing or unreadable file, malformed JSON or a document that is not a seccomp object.
    """
    relative = (annotations or {}).get(ANNOTATION)
    if relative is None:
        return None
    if not isinstance(relative, str) or not relative or relative.startswith("/"):
        raise ValueError(f"{ANNOTATION}: must be a path relative to the bundle, got {relative!r}")
    bundle = os.path.realpath(bundle_dir)
    path = os.path.realpath(os.path.join(bundle, relative))
    if os.path.commonpath([bundle, path]) != bundle:
        raise ValueError(f"{ANNOTATION}: {relative} escapes the bundle directory")
    try:
        data = files.read_regular(path, jsonlite.MAX_DOCUMENT)  # not a FIFO or device of the bundle's
    except OSError as err:
        raise ValueError(f"{ANNOTATION}: cannot read {relative}: {err.strerror}") from None
    except ValueError as err:
        raise ValueError(f"{ANNOTATION}: {relative} {err}") from None
    try:
        profile = jsonlite.loads(data)
    except UnicodeDecodeError:
        raise ValueError(f"{ANNOTATION}: {relative} is not UTF-8 text") from None
    except ValueError as err:
        raise ValueError(f"{ANNOTATION}: {relative} is not valid JSON: {err}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("defaultAction"), str):
        raise ValueError(f"{ANNOTATION}: {relative} is not a linux.seccomp object (no defaultAction)")
    return profile


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
