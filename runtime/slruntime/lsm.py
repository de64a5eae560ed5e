"""AppArmor profiles and SELinux labels, where the host has that LSM.

Labels apply at exec: the init (or exec process) writes them to its own
/proc/self/attr/*/exec, opened before pivot_root. Asking for a process label the host
does not enforce is an error at create, not a silently unconfined container.

linux.mountLabel is different: it labels the container's files and confines nothing by
itself. Without SELinux no access decision ever reads a file label, so it is accepted
and has no effect (crun does the same; runc hands `context=` to the kernel, whose tmpfs
then fails the mount). Where SELinux runs, the label is what keeps other containers'
categories off these files, and slr does not apply mount labels: refused there.
"""

import os

from slruntime.errors import SlrError


def apparmor_enabled():
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


def check(process, mount_label):
    """Refuse labels slr cannot apply on this host (called before anything is created)."""
    if process.apparmor_profile and not apparmor_enabled():
        raise SlrError("config.json: process.apparmorProfile: AppArmor is not enabled on this host")
    if process.selinux_label and not selinux_enabled():
        raise SlrError("config.json: process.selinuxLabel: SELinux is not enabled on this host")
    if mount_label and selinux_enabled():
        raise SlrError("config.json: linux.mountLabel: not supported where SELinux is enabled (slr does not label mounts)")


def open_exec_attrs(process):
    """Descriptors of the attr files to write at exec, opened while /proc is the host's."""
    targets = []
    if process.apparmor_profile:
        path = "/proc/self/attr/apparmor/exec"
        if not os.path.exists(path):
            path = "/proc/self/attr/exec"
        targets.append((os.open(path, os.O_WRONLY | os.O_CLOEXEC), f"exec {process.apparmor_profile}"))
    if process.selinux_label:
        targets.append((os.open("/proc/self/attr/exec", os.O_WRONLY | os.O_CLOEXEC), process.selinux_label))
    return targets


def apply_exec_attrs(targets):
    for fd, value in targets:
        try:
            os.write(fd, value.encode())
        except OSError as exc:
            raise SlrError(f"setting the exec label {value!r}: {exc.strerror}") from None
        finally:
            os.close(fd)
