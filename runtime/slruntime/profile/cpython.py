"""What a CPython interpreter can import, for the reachability walk.

An interpreter built with its modules inside (Debian's python3 has 61: posix, _socket,
select, ...) lists them in `PyImport_Inittab`, an array of {name, init function}. Followed
as plain data, that table makes every module's init function, method table and so every
system call of the whole interpreter reachable, whatever the program imports. A built-in
module's code only runs once something imports it by name, so the walk follows an entry
of the table only for a name that can be imported:

- a name in the Python sources of the rootfs (an `import` statement, or a string constant:
  importlib's bootstrap names `_thread`, `_weakref`, `posix` as strings);
- a name spelled in the interpreter's writable data: the strings of its deep-frozen
  modules (importlib, os, site, zipimport, ... compiled into the binary);
- a name whose string a reachable function refers to (`PyImport_ImportModule("_io")` in
  C, in the interpreter or in an extension module).

When the sources cannot be read (a `.pyc` without its `.py`, a zip archive on the path),
every built-in module counts as imported.
"""

import ast
import os
import struct
import warnings

from slruntime.profile import safeio

INITTAB_SYMBOL = "PyImport_Inittab"
# Imports of these symbols mark an extension module (or an embedding program): its
# strings may name modules it imports from C.
_PYTHON_API_PREFIXES = ("Py", "_Py")
# A Python source file larger than this is not read (the standard library's largest,
# pydoc_data/topics.py, is 0.7 MiB): the gating is then off.
MAX_SOURCE = 16 << 20


def inittab(obj):
    """[(module name, init function address, address of the pointer to it)] of an
    interpreter's built-in module table; [] for any other object."""
    pointer = obj.exports.get(INITTAB_SYMBOL)
    if pointer is None or not obj.in_data(pointer):
        return []
    table = _word(obj, pointer)
    entries = []
    while obj.in_data(table):
        name, init = struct.unpack("<QQ", obj.read(table, 16))
        if not name:
            break
        text = obj.read(name, 64).split(b"\x00")[0].decode("ascii", "replace")
        entries.append((text, init, table + 8))
        table += 16
    return entries


def uses_python_api(obj):
    return any(name.startswith(_PYTHON_API_PREFIXES) for name in obj.imports) or INITTAB_SYMBOL in obj.exports


def _word(obj, address):
    return struct.unpack("<Q", obj.read(address, 8))[0]


def source_imports(directories):
    """Names the Python code under `directories` (a rootfs and its bind mounts) can
    import: every module named by an import statement (each dotted prefix) or equal to a
    string constant, in every `.py` file. None if some code has no readable source (then
    anything may be imported)."""
    names = set()
    try:
        return _source_imports(directories, names)
    except OSError:
        return None                   # a directory that cannot be listed may hold any code


def _source_imports(directories, names):
    for directory, _, files in (walked for top in directories for walked in safeio.walk(top)):
        in_cache = os.path.basename(directory) == "__pycache__"
        for name in files:
            path = os.path.join(directory, name)
            if name.endswith((".zip", ".egg", ".whl")) or (name.endswith(".pyc") and not in_cache):
                return None           # code we cannot read as source
            if not name.endswith(".py") or os.path.islink(path):
                continue
            try:
                source = safeio.read_regular(path, MAX_SOURCE)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")   # invalid escapes in old code
                    tree = ast.parse(source, path)
            except (OSError, SyntaxError, ValueError, RecursionError):
                return None           # a FIFO, a huge or unparsable file: anything may be imported
            names.update(_names_in(tree))
    return names


def _names_in(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _prefixes(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from _prefixes(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 64:
            yield node.value


def _prefixes(dotted):
    parts = dotted.split(".")
    for index in range(1, len(parts) + 1):
        yield ".".join(parts[:index])
