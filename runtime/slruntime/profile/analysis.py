"""Static system-call analysis of the programs of a rootfs.

For each entry program: build its link map as the dynamic loader would (the executable,
DT_NEEDED breadth-first through RPATH/RUNPATH/ld.so.conf/default directories, the
PT_INTERP loader), add the libraries it may dlopen, and walk the reachable code from
the loader's and the executable's entry points and the libraries' initialisers.
Each file is disassembled once, however many programs load it.
"""

import os

from slruntime.profile import cpython, safeio
from slruntime.profile.disasm import DisassemblyError
from slruntime.profile.elfobject import ElfObject, NotAnElf
from slruntime.profile.program import LoadedObject, Program
from slruntime.profile.rootfs import Rootfs

# Functions that load libraries by name at run time.
_DLOPEN_FUNCTIONS = ("dlopen", "dlmopen", "__libc_dlopen_mode")
# Functions the loader calls by looking their names up, not through references:
# glibc's ld.so calls libc's __libc_early_init after loading it.
_LOADER_CALLS = ("__libc_early_init",)
_MACHINES = {62: "x86_64", 183: "aarch64"}


class AnalysisError(Exception):
    """The rootfs or an entry cannot be analysed; the message names the problem."""


class EntryResult:
    def __init__(self, path):
        self.path = path              # rootfs path of the entry program
        self.aliases = []             # other entry paths naming the same file
        self.syscalls = {}            # number -> set of object paths with call sites
        self.unresolved = {}          # object path -> syscall sites with unknown numbers
        self.objects = []             # rootfs paths in the link map (load order)
        self.missing = []             # DT_NEEDED / PT_INTERP names not found
        self.dlopened = []            # libraries named in the program, found and analysed
        self.dlopen_unresolved = []   # (object path, library name) not found in the rootfs
        self.dlopen_computed = []     # objects calling dlopen (names may be computed)
        self.loadable = []            # rootfs libraries no program links, loaded as dlopen() may
        self.python_modules = None    # CPython built-in modules: name -> importable?


class Analysis:
    def __init__(self, rootfs_dir, arch=None, mounts=()):
        self.rootfs = Rootfs(rootfs_dir, mounts)
        self.arch = arch
        self._loaded = {}             # host path -> LoadedObject
        self._python_imports = False  # cpython.source_imports() of the rootfs, once needed

    def _load(self, host_path):
        loaded = self._loaded.get(host_path)
        if loaded is None:
            obj = ElfObject(self.rootfs.inside(host_path), host_path)
            if self.arch is None:
                self.arch = obj.arch
            elif obj.arch != self.arch:
                raise NotAnElf(f"{obj.path}: {obj.arch} binary, the profile is for {self.arch}")
            try:
                loaded = self._loaded[host_path] = LoadedObject(obj)
            except DisassemblyError as err:
                raise AnalysisError(f"{obj.path}: cannot disassemble its code: {err}") from None
        return loaded

    def _machine(self, host_path):
        header = safeio.read_header(host_path, 20)
        if header is None or header[:4] != b"\x7fELF" or len(header) < 20:
            return None
        return _MACHINES.get(int.from_bytes(header[18:20], "little"))

    def _find_library(self, name, requester, exe):
        """Host path of a DT_NEEDED / dlopen name, searched like the loader does."""
        if "/" in name:
            found = self.rootfs.resolve(name)
            return found if found and self._machine(found) == self.arch else None
        origin = os.path.dirname(requester.path)
        dirs = []
        if not requester.runpath:
            dirs += requester.rpath + (exe.rpath if exe is not requester else [])
        dirs += requester.runpath + self.rootfs.library_dirs(self.arch)
        for directory in dirs:
            directory = directory.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
            found = self.rootfs.resolve(os.path.join(directory, name))
            if found and os.path.isfile(found) and self._machine(found) == self.arch:
                return found
        return None

    def analyse_entry(self, path, loadable=(), walk=True):
        """EntryResult for the program at rootfs path `path`. `loadable`: rootfs paths of
        libraries no program links; a program calling dlopen() may load them (Python's
        extension modules), so they join its link map. walk=False only links (the
        result's `objects`)."""
        host = self.rootfs.resolve(path)
        if host is None:
            raise AnalysisError(f"entry not found in the rootfs: {path}")
        return self._analyse(path, [host], program=True, loadable=loadable, walk=walk)

    def analyse_libraries(self, paths):
        """EntryResult for libraries a program may dlopen() by names the analysis cannot
        see: every exported function of them counts as called."""
        hosts = [self.rootfs.resolve(p) for p in paths]
        return self._analyse("(libraries loadable with dlopen)", [h for h in hosts if h], program=False)

    def _analyse(self, name, hosts, program, loadable=(), walk=True):
        result = EntryResult(name)
        link_map, by_host = [], {}
        for host in hosts:
            try:
                loaded = self._load(host)
            except NotAnElf as err:
                if program:
                    raise AnalysisError(str(err)) from None
                continue            # a library of another architecture: not ours to load
            if host not in by_host:
                by_host[host] = loaded
                link_map.append(loaded)
        if not link_map:
            return result
        exe = link_map[0]

        def add(name, requester):
            found = self._find_library(name, requester.obj, exe.obj)
            if found is None:
                return None
            if found not in by_host:
                try:
                    by_host[found] = self._load(found)
                except NotAnElf:
                    return None
                link_map.append(by_host[found])
            return by_host[found]

        followed = [0]
        linked = set()                # host paths some object names in DT_NEEDED

        def follow_needed():
            while followed[0] < len(link_map):
                requester = link_map[followed[0]]
                followed[0] += 1
                for needed in requester.obj.needed:
                    found = add(needed, requester)
                    if found is None:
                        result.missing.append(f"{needed} (needed by {requester.obj.path})")
                    else:
                        linked.add(found.obj.host_path)

        follow_needed()
        interp = None
        if program and exe.obj.interp:
            interp = add(exe.obj.interp, exe)
            if interp is None:
                result.missing.append(exe.obj.interp)

        dlopened = self._add_dlopen_candidates(link_map, add, result)
        follow_needed()
        if program and result.dlopen_computed and loadable:
            first = len(link_map)
            for path in loadable:
                host = self.rootfs.resolve(path)
                if host and host not in by_host:
                    try:
                        by_host[host] = self._load(host)
                    except NotAnElf:
                        continue          # a library of another architecture
                    link_map.append(by_host[host])
            follow_needed()
            # Entered through their exports unless another library links them.
            added = link_map[first:]
            result.loadable = [lo.obj.path for lo in added]
            dlopened += [lo for lo in added if lo.obj.host_path not in linked]
        if not walk:
            result.objects = [loaded.obj.path for loaded in link_map]
            return result
        roots = []
        if program:
            roots.append(("code", exe, exe.obj.entry))
            if interp is not None:
                roots.append(("code", interp, interp.obj.entry))
        else:
            # Libraries only ever loaded as another's dependency are entered through
            # their imports, not from every export.
            dlopened += [lo for lo in link_map[:len(hosts)] if lo.obj.host_path not in linked]
        for loaded in link_map:
            roots += [("code", loaded, a) for a in loaded.obj.init_functions]
            roots += [("data", loaded, start) for start, _ in loaded.obj.root_data]
        roots += [("name", None, name) for name in _LOADER_CALLS]
        for loaded in dlopened:
            roots += [("code", loaded, a) for a in loaded.obj.exports.values() if loaded.obj.in_code(a)]
        python_imports = None
        if any(loaded.builtin_modules for loaded in link_map):
            if self._python_imports is False:
                self._python_imports = cpython.source_imports(
                    [host for host, _ in self.rootfs.trees() if os.path.isdir(host)])
            python_imports = self._python_imports
        reach = Program(link_map, python_imports).walk(roots)
        result.syscalls = reach.syscalls
        result.unresolved = reach.unresolved
        result.python_modules = reach.python_modules
        result.objects = [loaded.obj.path for loaded in link_map]
        return result

    def _add_dlopen_candidates(self, link_map, add, result):
        """Libraries the program names in its data and may dlopen: load them too."""
        roots = []
        checked = 0
        while checked < len(link_map):
            loaded = link_map[checked]
            checked += 1
            obj = loaded.obj
            if not any(f in obj.imports or f in obj.exports for f in _DLOPEN_FUNCTIONS):
                continue
            result.dlopen_computed.append(obj.path)
            for name in obj.library_names:
                before = len(link_map)
                found = add(name, loaded)
                if found is None:
                    result.dlopen_unresolved.append((obj.path, name))
                elif len(link_map) > before:
                    result.dlopened.append(found.obj.path)
                    roots.append(found)
        return roots

