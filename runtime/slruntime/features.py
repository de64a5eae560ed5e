"""`slr features`: what this runtime implements, as the runtime-spec's features.md shapes it."""

from slruntime import OCI_VERSION, __version__, spec


def features():
    mount_options = sorted(
        [k for k in spec._MOUNT_FLAGS] + [k for k in spec._PROPAGATION_FLAGS])
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(spec.HOOK_NAMES),
        "mountOptions": mount_options,
        "linux": {
            "namespaces": list(spec.NAMESPACE_TYPES),
            "capabilities": list(spec.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": list(spec.SECCOMP_ACTIONS),
                "operators": list(spec.SECCOMP_OPERATORS),
                "archs": list(spec.SECCOMP_ARCHES),
                "knownFlags": list(spec.SECCOMP_FLAGS),
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                   "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {
            "org.opencontainers.runc.version": "",
            "org.slruntime.version": __version__,
        },
    }
