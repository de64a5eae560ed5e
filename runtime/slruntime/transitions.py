"""Which lifecycle operation a container's status allows, and what it becomes: the one
state machine of every command (as runc's libcontainer/state_linux.go).

    creating --create--> created --start--> running <--pause/resume--> paused
        |                   |                  |                          |
        +-------------------+--- the init exits (or is killed) ----------+--> stopped
                                                                             |
                                                         delete (any status with --force)
                                                                             v
                                                                           (gone)

The status itself is derived, never stored alone (state.Container.status): "stopped"
is seen once the init is gone, whatever the record says. `state`, `list` and `ps` read
a container in any status and are not operations here.
"""

from slruntime.errors import WrongState

DELETED = "deleted"  # the state directory is gone: no status any more

# operation -> {status it is allowed in: the status it leaves the container in}.
# kill, update, events and exec leave the status as they found it: what follows a
# signal (stopped, or nothing) is the init's doing, seen by the next status().
TRANSITIONS = {
    "start": {"created": "running"},
    "kill": {"creating": "creating", "created": "created", "running": "running", "paused": "paused"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "update": {"creating": "creating", "created": "created", "running": "running", "paused": "paused"},
    "events": {"creating": "creating", "created": "created", "running": "running", "paused": "paused"},
    "exec": {"created": "created", "running": "running"},
    # The process joins the frozen cgroup: it starts once the container is resumed.
    "exec --ignore-paused": {"created": "created", "running": "running", "paused": "paused"},
    "delete": {"created": DELETED, "stopped": DELETED},
    "delete --force": {"creating": DELETED, "created": DELETED, "running": DELETED, "paused": DELETED,
                       "stopped": DELETED},
}

# (operation, status) -> the refusal, in runc's words where runc has them; (operation,
# None) covers the statuses not listed. Placeholders: {id}, {status}.
REFUSALS = {
    ("start", "running"): "cannot start an already running container",
    ("start", "stopped"): "cannot start a container that has stopped",
    ("start", None): "cannot start a container in the {status} state",
    ("kill", "stopped"): "container not running",
    # kill in "creating" is allowed once create has recorded the init's pid; before
    # that, kill(2) with pid 0 would signal the caller's own process group.
    ("kill", "creating"): "container {id} has no process yet: it is being created",
    ("pause", None): "container not running: {status}",
    ("resume", None): "container not paused: {status}",
    ("update", "stopped"): "container not running",
    ("events", "stopped"): "container with id {id} is not running",
    ("exec", "paused"): "cannot exec in a paused container (use --ignore-paused to override)",
    ("exec", None): "cannot exec in a {status} container",
    ("exec --ignore-paused", None): "cannot exec in a {status} container",
    ("delete", "creating"): "cannot delete container {id} that is being created",
    ("delete", None): "cannot delete container {id} that is not stopped: {status}",
}


def refusal(operation, status, container_id):
    """The WrongState error for `operation` on a container in `status`."""
    template = REFUSALS.get((operation, status)) or REFUSALS[(operation, None)]
    return WrongState(template.format(id=container_id, status=status))


def check(operation, container):
    """The container's status if it allows `operation`; else raise its refusal."""
    status = container.status()
    if status not in TRANSITIONS[operation]:
        raise refusal(operation, status, container.id)
    return status
