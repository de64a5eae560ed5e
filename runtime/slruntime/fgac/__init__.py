"""Fine-grained access control (FGAC) server: performs the few privileged calls
(mount, umount, mknod) a policy allows for containers whose seccomp filter hands
them to it through OCI's linux.seccomp.listenerPath. See README.md."""
