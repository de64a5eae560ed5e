"""The operations on a container that act through its cgroup: pause, resume, update,
events. (create, start, run, kill and delete, which build and tear down the container,
are in container.py; which status allows which operation is transitions.py's.)"""

from slruntime import transitions
from slruntime.errors import SlrError


def pause(container):
    _freeze(container, "pause", True)


def resume(container):
    _freeze(container, "resume", False)


def _freeze(container, operation, frozen):
    transitions.check(operation, container)
    cgroup = container.cgroup()
    if cgroup is None:
        raise SlrError("container has no cgroup to freeze")
    cgroup.freeze(frozen)


def update(container, resources_json):
    """Apply linux.resources-shaped `resources_json` to the container's cgroup, and record
    it in the saved config (what later processes and `update`s start from)."""
    from slruntime import spec as specmod

    transitions.check("update", container)
    try:
        resources = specmod.parse_resources(resources_json, "resources")
    except specmod.SpecError as exc:  # it names the JSON path, but not of a config.json
        raise SlrError(exc.located("update")) from None
    cgroup = container.cgroup()
    if cgroup is None:
        raise SlrError("container has no cgroup to update")
    device_policy = None
    if resources.devices is not None:  # the new rules replace the old ones
        from slruntime.cgroups import devices
        from slruntime.container import saved_spec

        device_policy = devices.Policy(devices.rules(resources.devices, saved_spec(container).linux.devices,
                                                     origin="update: devices"))
    cgroup.apply(resources)
    if device_policy is not None:
        cgroup.set_devices(device_policy)
    container.save_config(specmod.merge_resources(container.saved_config(), resources_json))

def events(container, interval, once, emit):
    """Hand emit() runc's stats event every `interval` seconds (once: a single one)
    while the container is not stopped."""
    import time

    while True:
        transitions.check("events", container)
        cgroup = container.cgroup()
        emit({"type": "stats", "id": container.id, "data": cgroup.stats() if cgroup is not None else {}})
        if once:
            return
        time.sleep(interval)
