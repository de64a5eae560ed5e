"""One way of starting the benchmark's container (see variants.py for the list)."""


class Variant:
    """One way to run /bin/true in the bundle.

    argv and delete_argv may hold "{id}" (the container id of the run); delete_argv, run
    after a failed run, removes what the runtime may have left behind.
    """

    def __init__(self, name, label, argv=None, delete_argv=None, version=None,
                 hide_cgroup2=False, unavailable=None, trigger=None, setup=None, teardown=None,
                 config_change=None, before_run=None, references=()):
        self.name = name
        self.label = label
        self.argv = argv
        self.delete_argv = delete_argv
        self.version = version
        self.hide_cgroup2 = hide_cgroup2
        self.unavailable = unavailable
        # A callable(container_id) -> exit status for variants started from inside the
        # driver process (no fork/exec per run), e.g. fast start through its socket.
        self.trigger = trigger
        # Commands run once before the first and after the last run (e.g. a pool).
        self.setup = setup
        self.teardown = teardown
        # How this variant's config.json differs from the common one, and why (or None).
        self.config_change = config_change
        # A callable() run before each of its runs (warm-up, timed, traced), outside the
        # measured time, e.g. to empty a cache; returns None, or an error message that
        # fails the variant.
        self.before_run = before_run
        # Variants this one is compared with besides runc, crun and the floor: runc and
        # crun running the same changed config.
        self.references = tuple(references)

    def command(self, container_id):
        return [arg.replace("{id}", container_id) for arg in self.argv]

    def delete_command(self, container_id):
        if not self.delete_argv:
            return None
        return [arg.replace("{id}", container_id) for arg in self.delete_argv]
