"""The setup protocol between the runtime and the processes it forks (runc's
libcontainer/sync.go): the message types on a sync.Channel, in the order they are sent.

Each message is one JSON object per line with a "type" (below) and its fields. Either
side may instead send {"error": "one line"} and exit; end-of-file means the other side
died without a word. The receiver names what it expects (Channel.expect), so a message
out of order is an error, never a hang.

`slr create` (container.create; init.stage1/direct_init, init's setup):

    runtime                                     stage 1 / init
       | fork ------------------------------------>|  prepares the seccomp filter
       |  (puts the child in the cgroup)           |
       |--- GO {cgroup} -------------------------->|
       |                                           |  (a new user namespace:)
       |<-- USERNS --------------------------------|  unshare(CLONE_NEWUSER)
       |  writes uid_map/gid_map                   |
       |--- MAPPED ------------------------------->|  becomes the namespace's root
       |                                           |  other namespaces; stage 1 forks
       |<-- PID {pid} -----------------------------|  the init (stage 1 only; it exits)
       |                                           |  init: builds the rootfs
       |<-- HOOKS ---------------------------------|  (only with prestart/createRuntime hooks)
       |  runs prestart, createRuntime hooks       |
       |--- OK {state} --------------------------->|  createContainer hooks, pivot_root,
       |                                           |  becomes the container's process
       |<-- CREATED -------------------------------|  then waits on exec.fifo (or the pool)

`slr exec` (execute.execute; execute's child, then its child in the pid namespace):

    runtime                                     stage 1 / exec process
       | fork ------------------------------------>|
       |  (puts the child in the cgroup)           |
       |--- GO {state} --------------------------->|  joins the init's namespaces, forks
       |<-- PID {pid} -----------------------------|  (stage 1 exits)
       |  (accepts the pty on its console socket)  |  exec process: terminal, rlimits
       |<-- READY ---------------------------------|  finalises and execs
"""

GO = "go"  # runtime -> child: in its cgroup; go on ({"cgroup": ...} / {"state": ...})
USERNS = "userns"  # child -> runtime: unshared its user namespace, waits for the id maps
MAPPED = "mapped"  # runtime -> child: uid_map and gid_map written
PID = "pid"  # stage 1 -> runtime: {"pid": the process forked in the namespaces}
HOOKS = "hooks"  # init -> runtime: rootfs built, run prestart and createRuntime hooks now
OK = "ok"  # runtime -> init: {"state": the OCI state}, hooks done (if any); finish setup
CREATED = "created"  # init -> runtime: the container's process, waiting for start
READY = "ready"  # exec process -> runtime: set up, about to exec
