"""Errors the runtime reports to its caller as one line and a non-zero exit code."""


class SlrError(Exception):
    """An error with a complete, one-line, user-facing message."""

    exit_code = 1


class SpecError(SlrError):
    """config.json is malformed or asks for something unsupported; names the JSON path."""

    def __init__(self, path, message, source="config.json"):
        super().__init__(f"{source}: {path}: {message}" if path else f"{source}: {message}")
        self.path = path


class ContainerNotFound(SlrError):
    def __init__(self, container_id):
        super().__init__(f"container does not exist: {container_id}")


class ContainerExists(SlrError):
    def __init__(self, container_id):
        super().__init__(f"container with id exists: {container_id}")


class WrongState(SlrError):
    """An operation asked of a container in a state that does not allow it."""
