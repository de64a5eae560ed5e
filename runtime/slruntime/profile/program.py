"""Reachability over the code and data of one program: an executable and what it loads.

Nodes are code regions (see disasm) and data regions of the loaded objects; edges are
direct calls and branches, references from code to code or data, pointers stored in
data, and symbol imports resolved in load order (the first object defining a name wins,
as with the dynamic loader). An indirect call can only reach a function whose address the
reachable code or data holds, so walking these edges from the program's entry points
covers indirect calls without a points-to analysis (an over-approximation: every pointer
a reachable function can name is assumed called).
"""

import bisect

from slruntime.profile import cpython, disasm


class LoadedObject:
    """An ElfObject with its code facts and indexes over its data."""

    def __init__(self, obj):
        self.obj = obj
        self.facts = disasm.analyse(obj)
        self.slots = sorted(obj.pointers)
        self.object_starts = [start for start, _ in obj.objects]
        bounds = set(self.object_starts)
        for start, end in obj.data_ranges + obj.got_ranges:
            bounds.update((start, end))
        # Without symbols (stripped libraries, executables) most data objects have no
        # size. Every address the code or the data refers to starts an object (or a part
        # of one that is referred to on its own), so a region entered at one address ends
        # at the next referenced one instead of running through unrelated neighbours.
        for region in self.facts.regions:
            bounds.update(a for a in region.refs if obj.in_data(a))
        bounds.update(v for v in obj.pointers.values() if isinstance(v, int) and obj.in_data(v))
        self.bounds = sorted(bounds)
        # CPython: the built-in module table, and strings that may name modules.
        self.builtin_modules = cpython.inittab(obj)
        self.identifiers = self.frozen_identifiers = {}
        if cpython.uses_python_api(obj):
            self.identifiers = obj.identifiers(writable=False)
            self.frozen_identifiers = obj.identifiers(writable=True) if self.builtin_modules else {}
        self._identifier_starts = sorted(self.identifiers)
        obj.release_image()

    def identifier_at(self, address):
        """The identifier string at a read-only data address (also a tail of a longer
        one: linkers merge "abc" into "_abc"), or None."""
        text = self.identifiers.get(address)
        if text is None and self._identifier_starts:
            index = bisect.bisect_right(self._identifier_starts, address) - 1
            if index >= 0:
                start = self._identifier_starts[index]
                if address - start < len(self.identifiers[start]):
                    text = self.identifiers[start][address - start:]
        return text

    def data_region(self, address):
        """(start, end) of the data object holding `address`.

        A sized symbol gives exact bounds; GOT slots are one word each; otherwise the
        region runs to the next known object or section boundary.
        """
        obj = self.obj
        index = bisect.bisect_right(self.object_starts, address) - 1
        if index >= 0 and obj.objects[index][0] <= address < obj.objects[index][1]:
            return obj.objects[index]
        for start, end in obj.got_ranges:
            if start <= address < end:
                slot = address - (address - start) % 8
                return slot, slot + 8
        index = bisect.bisect_right(self.bounds, address)
        return address, self.bounds[index] if index < len(self.bounds) else address + 8

    def slots_in(self, start, end):
        """Addresses of the pointers stored in [start, end), in address order."""
        low = bisect.bisect_left(self.slots, start)
        high = bisect.bisect_left(self.slots, end)
        return self.slots[low:high]

    def copy_at(self, address):
        for start, end, name in self.obj.copies:
            if start <= address < end:
                return name
        return None


class Reach:
    """What a walk found: syscall numbers with the objects holding their call sites."""

    def __init__(self):
        self.syscalls = {}            # number -> set of object paths
        self.unresolved = {}          # object path -> syscall sites with an unknown number
        self.python_modules = None    # built-in modules of a CPython interpreter: name -> imported?

    def add(self, number, path):
        self.syscalls.setdefault(number, set()).add(path)


class Program:
    def __init__(self, scope, python_imports=None):
        self.scope = scope            # LoadedObjects in symbol lookup order
        self.definitions = {}
        for loaded in scope:
            for name, address in loaded.obj.exports.items():
                self.definitions.setdefault(name, (loaded, address))
        self.derived_wrappers = {}    # (id(loaded), region index) -> argument index
        self._derive_wrappers()
        # A CPython interpreter's built-in modules (see cpython): the table slots holding
        # their init functions are followed only for modules that can be imported.
        # python_imports: names the rootfs's Python sources can import (None: any).
        self.interpreter = next((lo for lo in scope if lo.builtin_modules), None)
        self.module_inits = {}        # built-in module name -> init function address
        self.gated_slots = set()
        self.imported_names = set()   # names known to be importable (sources, frozen code)
        if self.interpreter is not None:
            for name, init, slot in self.interpreter.builtin_modules:
                if init:
                    self.module_inits[name] = init
                    self.gated_slots.add(slot)
            if python_imports is None:
                self.imported_names = set(self.module_inits)
            else:
                self.imported_names = set(python_imports) | set(self.interpreter.frozen_identifiers.values())

    def resolve(self, name):
        return self.definitions.get(name)

    def wrapper_arg(self, loaded, address, depth=0):
        """Argument index carrying the syscall number if `address` is a syscall wrapper."""
        index = loaded.facts.region_at(address)
        if index is None or depth > 4:
            return None
        region = loaded.facts.regions[index]
        if region.wrapper_arg is not None:
            return region.wrapper_arg
        derived = self.derived_wrappers.get((id(loaded), index))
        if derived is not None or region.forward is None:
            return derived
        kind, target = region.forward
        if kind == "slot":
            target = loaded.obj.pointers.get(target)
            if isinstance(target, str):
                found = self.resolve(target)
                if found is None:
                    return None
                loaded, target = found
        if isinstance(target, int) and loaded.obj.in_code(target):
            return self.wrapper_arg(loaded, target, depth + 1)
        return None

    def _derive_wrappers(self):
        # A function passing its own argument j on as a wrapper's number argument is a
        # wrapper on j. Iterate: wrappers of wrappers.
        candidates = []
        for loaded in self.scope:
            for index, region in enumerate(loaded.facts.regions):
                for target, args in region.calls:
                    if any(value[0] == "arg" for value in args.values()):
                        candidates.append((loaded, index, target, args))
        changed = True
        while changed:
            changed = False
            for loaded, index, target, args in candidates:
                key = (id(loaded), index)
                if key in self.derived_wrappers or loaded.facts.regions[index].wrapper_arg is not None:
                    continue
                k = self.wrapper_arg(loaded, target)
                value = args.get(k) if k is not None else None
                if value is not None and value[0] == "arg":
                    self.derived_wrappers[key] = value[1]
                    changed = True

    def walk(self, roots):
        """Reach from roots: ("code", loaded, addr), ("data", loaded, addr) or ("name", name)."""
        reach = Reach()
        seen_code, seen_slots = set(), {}
        work = list(roots)
        if self.interpreter is not None:
            reach.python_modules = {name: False for name in self.module_inits}
            for name in self.imported_names & set(self.module_inits):
                self._import(name, reach, work)
        while work:
            kind, loaded, address = work.pop()
            if kind == "name":
                found = self.resolve(address)
                if found is None:
                    continue
                loaded, address = found
                kind = self._kind(loaded, address)
            if kind == "code":
                index = loaded.facts.region_at(address)
                key = (id(loaded), index)
                if index is None or key in seen_code:
                    continue
                seen_code.add(key)
                self._visit_code(loaded, index, reach, work)
                if reach.python_modules is not None and loaded.identifiers:
                    # C code naming a built-in module (PyImport_ImportModule("_io")).
                    for address in loaded.facts.regions[index].refs:
                        name = loaded.identifier_at(address)
                        if name in self.module_inits and not reach.python_modules[name]:
                            self._import(name, reach, work)
            elif kind == "data":
                # Pointers from the address to the end of its region. A walk that meets a
                # slot seen before stops: the earlier walk went on from there to the
                # same end, so each slot is read once.
                start, end = loaded.data_region(address)
                seen = seen_slots.setdefault(id(loaded), set())
                for slot in loaded.slots_in(start, end):
                    if slot in seen:
                        break
                    seen.add(slot)
                    if loaded is self.interpreter and slot in self.gated_slots:
                        continue      # a built-in module's init: entered when imported
                    value = loaded.obj.pointers[slot]
                    if isinstance(value, str):
                        work.append(("name", None, value))
                    else:
                        self._push_address(loaded, value, work)
        return reach

    def _import(self, name, reach, work):
        reach.python_modules[name] = True
        work.append(("code", self.interpreter, self.module_inits[name]))

    def _visit_code(self, loaded, index, reach, work):
        region = loaded.facts.regions[index]
        path = loaded.obj.path
        for number in region.syscalls:
            reach.add(number, path)
        if region.unresolved:
            reach.unresolved[path] = reach.unresolved.get(path, 0) + region.unresolved
        for target, args in region.calls:
            work.append(("code", loaded, target))
            k = self.wrapper_arg(loaded, target)
            if k is not None:
                value = args.get(k)
                if value is not None and value[0] == "imm":
                    reach.add(value[1], path)
                elif value is None or value[0] != "arg":
                    # A number computed at run time (syscall(n) with n from input).
                    reach.unresolved[path] = reach.unresolved.get(path, 0) + 1
        for address in region.refs:
            self._push_address(loaded, address, work)

    def _push_address(self, loaded, address, work):
        kind = self._kind(loaded, address)
        if kind == "name":
            work.append(("name", None, loaded.copy_at(address)))
        elif kind is not None:
            work.append((kind, loaded, address))

    @staticmethod
    def _kind(loaded, address):
        obj = loaded.obj
        if obj.in_code(address):
            return "code"
        if obj.copies and loaded.copy_at(address) is not None:
            return "name"
        if obj.in_data(address):
            return "data"
        return None
