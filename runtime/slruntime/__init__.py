"""slruntime: a secure, lightweight OCI container runtime for embedded Linux."""

__version__ = "0.1.0"
OCI_VERSION = "1.2.0"
