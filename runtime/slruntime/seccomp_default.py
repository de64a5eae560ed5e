"""The seccomp profile of a container whose config.json has none.

Two sources: the image's own profile, a file of the bundle named by the annotation

    "annotations": {"org.slruntime.seccomp.profile": "seccomp.profile.json"}

(what `slr profile --install` and the layer's slruntime_seccomp_profile class write;
the path is relative to the bundle and must stay inside it), and the administrator's
`seccomp-default` in slr.conf. The administrator's profile is a floor that the image's
can only narrow: an annotation (which engines pass through from pods and images) must
not swap it for an allow-all file of the image. Both filters are loaded, and the kernel
applies the strictest action of the two to every call. config.json's own linux.seccomp
(the engine's choice, as with runc) replaces both.

Runtime code, run by every create without linux.seccomp (and so part of the compact
binary, unlike the host-side `slr profile` package): it imports only os, errno, files,
jsonlite, libc and the runtime's config.
"""

import errno
import os

from slruntime import files, jsonlite, libc
from slruntime.errors import SlrError

ANNOTATION = "org.slruntime.seccomp.profile"
# A listener is the runtime's configuration, not the image's: the init connects to it as
# the host's root before pivot_root and hands it the notify descriptor, and a seccomp
# agent (the FGAC server) picks its rules by the metadata. From an image, they would let
# the image choose a host socket to talk to and the agent's rules it gets.
IMAGE_FORBIDDEN = ("listenerPath", "listenerMetadata")


def apply(spec):
    """Give spec.linux (which has no seccomp of its own) the image's profile, slr.conf's
    seccomp-default, or the image's with slr.conf's as its floor."""
    from slruntime import config, spec as specmod

    image = None
    if ANNOTATION in spec.annotations:
        try:
            image = load_image_profile(spec.bundle, spec.annotations)
        except ValueError as exc:
            raise SlrError(f"config.json: annotations: {exc}") from None
        image = specmod.parse_seccomp(image, "image default seccomp profile")
    admin = config.default_seccomp(config.load())
    if image is not None and admin is not None:
        if admin.notifies():
            raise SlrError("seccomp-default: a profile with SCMP_ACT_NOTIFY rules cannot be stacked under "
                           "the image's (annotation org.slruntime.seccomp.profile): only one filter may notify")
        spec.linux.seccomp_floor = admin
    spec.linux.seccomp = image if image is not None else admin


def load_image_profile(bundle_dir, annotations):
    """The linux.seccomp object the annotation names, or None without the annotation.

    Raises ValueError (one line naming the problem) for a path escaping the bundle, a
    missing or unreadable file, malformed JSON, a document that is not a seccomp object,
    or one that names a listener (IMAGE_FORBIDDEN).
    """
    relative = (annotations or {}).get(ANNOTATION)
    if relative is None:
        return None
    if not isinstance(relative, str) or not relative or relative.startswith("/"):
        raise ValueError(f"{ANNOTATION}: must be a path relative to the bundle, got {relative!r}")
    try:
        data = _read_beneath(bundle_dir, relative)
    except OSError as err:
        if err.errno == errno.EXDEV:
            raise ValueError(f"{ANNOTATION}: {relative} escapes the bundle directory") from None
        raise ValueError(f"{ANNOTATION}: cannot read {relative}: {os.strerror(err.errno)}") from None
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
    for key in IMAGE_FORBIDDEN:
        if key in profile:
            raise ValueError(f"{ANNOTATION}: {relative}: {key} is not allowed in an image's profile "
                             "(only config.json or slr.conf may name a seccomp listener)")
    return profile


def _read_beneath(bundle_dir, relative):
    """The bytes of `relative`, resolved below the bundle in one openat2 (RESOLVE_BENEATH:
    EXDEV for '..' or an absolute symlink leaving it). Not realpath and then open: a
    container sharing the bundle's rootfs (a pool, a second run) could swap a directory
    on the path for a symlink in between and have the runtime read a host file."""
    bundle_fd = os.open(bundle_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = libc.openat2(bundle_fd, relative, os.O_PATH, libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS)
    finally:
        os.close(bundle_fd)
    try:
        return files.read_regular(f"/proc/self/fd/{fd}", jsonlite.MAX_DOCUMENT)  # not a FIFO or device
    finally:
        os.close(fd)
