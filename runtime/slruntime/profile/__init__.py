"""slr profile: seccomp profiles from system-call analysis of a rootfs (see README.md)."""
