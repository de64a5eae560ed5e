"""C modules of the compact binary: which ones the static libpython already holds, and how
to compile the others (`_json`, `_ctypes`, python-prctl's `_prctl`, plain stdlib modules)
into it as builtins.
"""

import os
import re
import subprocess

# CPython 3.11's builtins that every interpreter has, whatever the build configuration:
# the entries of Modules/config.c.in (no PyInit_ symbol for builtins/sys) and the
# modules of Modules/Setup.bootstrap.in. The interpreter needs them to start.
CORE_INITTAB = {
    "marshal": "PyMarshal_Init",
    "_imp": "PyInit__imp",
    "_ast": "PyInit__ast",
    "_tokenize": "PyInit__tokenize",
    "builtins": None,
    "sys": None,
    "gc": "PyInit_gc",
    "_warnings": "_PyWarnings_Init",
    "_string": "PyInit__string",
}
BOOTSTRAP_MODULES = (
    "atexit", "faulthandler", "posix", "_signal", "_tracemalloc", "_codecs", "_collections",
    "errno", "_io", "itertools", "_sre", "_thread", "time", "_weakref", "_abc", "_functools",
    "_locale", "_operator", "_stat", "_symtable", "pwd",
)

# Stdlib C modules that need a third-party library (or are _ctypes, built by its own
# recipe below): never compiled from Setup.stdlib.in by this tool.
NEEDS_EXTERNAL_LIBRARY = {
    "_bz2", "_lzma", "zlib", "binascii", "pyexpat", "_elementtree", "_decimal", "_hashlib",
    "_ssl", "_sqlite3", "_tkinter", "_gdbm", "_dbm", "_uuid", "_crypt", "nis", "readline",
    "_curses", "_curses_panel", "_ctypes", "_ctypes_test", "ossaudiodev",
}


class NativeError(Exception):
    """A C module cannot be provided."""


class NativeModule:
    """How to compile one C module: its sources, extra compiler flags and libraries."""

    def __init__(self, name, sources, cflags=(), libraries=(), core=True):
        self.name = name
        self.sources = list(sources)
        self.cflags = list(cflags)
        self.libraries = list(libraries)
        self.core = core  # a CPython module: may use the interpreter's internal headers


def init_function(name):
    """The C function that creates builtin module `name` (None for builtins and sys)."""
    return CORE_INITTAB.get(name, f"PyInit_{name}")


def libpython_modules(nm, libpython):
    """Names of the modules whose init function the static library defines."""
    output = subprocess.run(nm + ["--defined-only", libpython], check=True,
                            capture_output=True, text=True).stdout
    symbols = set(re.findall(r" T (\w+)$", output, re.MULTILINE))
    names = {m[len("PyInit_"):] for m in symbols if m.startswith("PyInit_")}
    names.update(n for n, f in CORE_INITTAB.items() if f is None or f in symbols)
    return names


def _ffi_defines(cc, cflags):
    """The HAVE_FFI_* macros CPython's setup.py derives from the target's ffi.h."""
    try:
        header = subprocess.run(cc + cflags + ["-E", "-x", "c", "-"],
                                input="#include <ffi.h>\n", check=True,
                                capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as error:
        raise NativeError(f"_ctypes needs libffi's ffi.h: {error.stderr.strip()}") from None
    return [f"-DHAVE_{function.upper()}=1"
            for function in ("ffi_prep_cif_var", "ffi_prep_closure_loc", "ffi_closure_alloc")
            if re.search(rf"\b{function}\b", header)]


def _setup_stdlib_sources(python_src):
    """name -> source list from Modules/Setup.stdlib.in (plain stdlib C modules)."""
    setup = os.path.join(python_src, "Modules", "Setup.stdlib.in")
    entries = {}
    with open(setup, encoding="utf-8") as lines:
        for line in lines:
            match = re.match(r"^(?:@MODULE_\w+_TRUE@)?(\w+)\s+([\w/.]+\.c(?:\s+[\w/.]+\.c)*)\s*$",
                             line)
            if match:
                entries[match.group(1)] = match.group(2).split()
    return entries


def recipe(name, python_src, prctl_src, cc, cflags):
    """The NativeModule to compile for `name`, or None when no source is known."""
    if name == "_prctl":
        if prctl_src is None:
            return None
        return NativeModule("_prctl", [os.path.join(prctl_src, "_prctlmodule.c")],
                            libraries=["cap"], core=False)
    if python_src is None:
        return None
    modules = os.path.join(python_src, "Modules")
    if name == "_ctypes":
        sources = [os.path.join(modules, "_ctypes", f) for f in
                   ("_ctypes.c", "callbacks.c", "callproc.c", "stgdict.c", "cfield.c")]
        return NativeModule("_ctypes", sources, _ffi_defines(cc, cflags), ["ffi", "dl"])
    if name in NEEDS_EXTERNAL_LIBRARY:
        return None
    sources = _setup_stdlib_sources(python_src).get(name)
    if sources is None:
        return None
    return NativeModule(name, [os.path.join(modules, s) for s in sources], libraries=["m"])


def library_arguments(cc, cflags, libraries):
    """Linker arguments for `libraries`: the static archive when the toolchain has one
    (nothing more to install on the target), else the shared library."""
    arguments = []
    for library in libraries:
        archive = subprocess.run(cc + cflags + [f"-print-file-name=lib{library}.a"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        if os.path.isabs(archive) and os.path.isfile(archive) and library not in ("dl", "m"):
            arguments.append(archive)
        else:
            arguments.append(f"-l{library}")
    return arguments


def libpython_link_libraries(libpython):
    """The system libraries libpython and its builtin modules need, from the Makefile
    installed next to it (LIBS, MODLIBS, SYSLIBS); a glibc default when there is none.
    The link uses --as-needed: libraries of modules left out are not linked."""
    makefile = os.path.join(os.path.dirname(os.path.realpath(libpython)), "Makefile")
    if not os.path.isfile(makefile):
        return ["-lpthread", "-ldl", "-lutil", "-lm"]
    variables = {}
    with open(makefile, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = re.match(r"^(\w+)\s*=\s*(.*?)\s*$", line)
            if match:
                variables.setdefault(match.group(1), match.group(2))

    def expand(text, depth=0):
        if depth > 10:
            return text
        return re.sub(r"\$\((\w+)\)",
                      lambda m: expand(variables.get(m.group(1), ""), depth + 1), text)

    return expand(" ".join(variables.get(v, "") for v in ("LIBS", "MODLIBS", "SYSLIBS"))).split()
