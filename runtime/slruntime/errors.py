"""Errors the runtime reports to its caller as one line and a non-zero exit code."""


class SlrError(Exception):
    """An error with a complete, one-line, user-facing message."""

    exit_code = 1


class SpecError(SlrError):
    """A JSON document (config.json unless `source` says otherwise) is malformed or asks
    for something unsupported: `path` is where in it ("" for the whole document, else
    e.g. linux.resources.memory.limit), `message` what is wrong there."""

    def __init__(self, path, message, source="config.json"):
        self.path, self.message, self.source = path, message, source
        super().__init__(self.located(source))

    def located(self, source):
        """The one-line error, reported of the document (or command) `source`."""
        return f"{source}: {self.path}: {self.message}" if self.path else f"{source}: {self.message}"


class ContainerNotFound(SlrError):
    def __init__(self, container_id):
        super().__init__(f"container does not exist: {container_id}")


class ContainerExists(SlrError):
    def __init__(self, container_id):
        super().__init__(f"container with id exists: {container_id}")


class WrongState(SlrError):
    """An operation asked of a container in a state that does not allow it."""
