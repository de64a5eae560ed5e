"""From analysis results to an OCI `linux.seccomp` object and a report."""

from slruntime.profile import syscalls

# System calls made on the workload's behalf, not by its code:
# - what slr's own process runs after loading the filter and before execve (see
#   slruntime/process.py finalize: without noNewPrivileges the filter is loaded during
#   create, before dropping capabilities and changing user and directory; then the init
#   reports to the runtime, waits on exec.fifo for start and closes descriptors);
# - restart_syscall, which the kernel makes a task issue when it restarts an interrupted
#   sleep (nanosleep, poll, ...) after a signal handler.
RUNTIME_HANDOFF = ("execve", "prctl", "capget", "capset", "setresuid", "setresgid", "setgroups",
                   "chdir", "getcwd", "sched_setaffinity", "read", "write", "close", "close_range")
# - rt_sigreturn, which returns from a signal handler through a trampoline that may live
#   in the vDSO rather than in any file (aarch64 glibc uses the vDSO's).
KERNEL_IMPLIED = ("restart_syscall", "rt_sigreturn")

EPERM = 1


class Profile:
    def __init__(self, arch, results, dynamic=None):
        self.arch = arch
        self.table = syscalls.table(arch)
        self.results = results                 # EntryResults
        self.needed_by = {}                    # name -> {entry path: [object paths]}
        self.unknown_numbers = set()           # numbers found that the table does not know
        for result in results:
            for number, objects in result.syscalls.items():
                name = self.table.get(number)
                if name is None:
                    self.unknown_numbers.add(number)
                    continue
                self.needed_by.setdefault(name, {})[result.path] = sorted(objects)
        self.added = {}                        # name -> why it was added
        for name in RUNTIME_HANDOFF:
            self.added.setdefault(name, "slr runs it between loading the filter and execve")
        for name in KERNEL_IMPLIED:
            self.added.setdefault(name, "made by the kernel's restart and signal-return paths")
        self.dynamic = dynamic                 # dynamic.observe() result, or None
        for name in (dynamic or {}).get("observed", ()):
            if name not in self.needed_by:
                self.added.setdefault(name, "observed at run time (--dynamic), not found statically")
        known = set(self.table.values())
        self.allowed = sorted(n for n in set(self.needed_by) | set(self.added) if n in known)

    def seccomp(self):
        """The OCI linux.seccomp object: deny (EPERM) everything but the allowed calls."""
        return {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": EPERM,
            "architectures": [syscalls.oci_arch(self.arch)],
            "syscalls": [{"names": self.allowed, "action": "SCMP_ACT_ALLOW"}],
        }

    def report(self):
        """A JSON-serialisable report of what was found and why it is allowed."""
        entries = {}
        for result in self.results:
            names = sorted(self.table[n] for n in result.syscalls if n in self.table)
            entries[result.path] = {
                "aliases": result.aliases,
                "objects": result.objects,
                "syscalls": names,
                "missing_libraries": result.missing,
                "unresolved_syscall_sites": result.unresolved,
                "dlopen_callers": result.dlopen_computed,
                "dlopen_resolved": result.dlopened,
                "dlopen_unresolved": [{"object": o, "library": n} for o, n in result.dlopen_unresolved],
                "loadable_libraries": result.loadable,
                "python_builtin_modules": result.python_modules,
            }
        return {
            "architecture": self.arch,
            "table_size": len(self.table),
            "allowed": len(self.allowed),
            "denied": len(self.table) - len(self.allowed),
            "allowed_syscalls": self.allowed,
            "denied_syscalls": sorted(set(self.table.values()) - set(self.allowed)),
            "added": dict(sorted(self.added.items())),
            "needed_by": {name: self.needed_by[name] for name in sorted(self.needed_by)},
            "unknown_syscall_numbers": sorted(self.unknown_numbers),
            "dynamic": self.dynamic,
            "entries": entries,
        }


def report_text(report):
    """A short human-readable summary of report()."""
    lines = [
        f"architecture {report['architecture']}: {report['allowed']} of {report['table_size']} "
        f"system calls allowed, {report['denied']} denied",
    ]
    for path, entry in report["entries"].items():
        alias = f" (+{len(entry['aliases'])} links)" if entry["aliases"] else ""
        lines.append(f"{path}{alias}: {len(entry['syscalls'])} system calls, "
                     f"{len(entry['objects'])} objects")
        for missing in entry["missing_libraries"]:
            lines.append(f"  missing library: {missing}")
        for site in entry["dlopen_unresolved"]:
            lines.append(f"  dlopen()ed library not in the rootfs: {site['library']} (named by {site['object']})")
        for obj in entry["dlopen_callers"]:
            lines.append(f"  calls dlopen(): {obj} (computed library names: only the libraries no program links are added)")
        if entry["loadable_libraries"]:
            lines.append(f"  {len(entry['loadable_libraries'])} libraries no program links, loaded as dlopen() may")
        modules = entry["python_builtin_modules"]
        if modules:
            imported = sorted(name for name, used in modules.items() if used)
            lines.append(f"  CPython built-in modules importable: {len(imported)} of {len(modules)}: {' '.join(imported)}")
        for obj, count in entry["unresolved_syscall_sites"].items():
            lines.append(f"  {count} system call site(s) with an unknown number in {obj}")
    dynamic = report.get("dynamic")
    if dynamic:
        lines.append(f"dynamic run: exit code {dynamic['exit_code']}"
                     f"{', stopped at the time limit' if dynamic['timed_out'] else ''}, "
                     f"{len(dynamic['observed'])} system calls beyond the static profile")
    for name, why in report["added"].items():
        lines.append(f"added {name}: {why}")
    lines.append("allowed: " + " ".join(report["allowed_syscalls"]))
    return "\n".join(lines) + "\n"
