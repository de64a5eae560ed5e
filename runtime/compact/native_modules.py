"""C modules of the compact binary: which ones the static libpython already holds, and how
to compile the others (`_json`, `_ctypes`, python-prctl's `_prctl`, plain stdlib modules)
into it as builtins.
"""

import os
import re
import subprocess

# Stdlib C modules that need a third-party library (or are _ctypes, built by its own
# recipe below): never compiled from Setup.stdlib.in by this tool.
NEEDS_EXTERNAL_LIBRARY = {
    "_bz2", "_lzma", "zlib", "pyexpat", "_elementtree", "_decimal", "_hashlib",
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


def core_modules(libpython, python_src):
    """{name: init function or None} of the builtins every interpreter of this version
    has and needs to start: the static entries of Modules/config.c.in (marshal, _imp,
    builtins, sys...) and the modules of Modules/Setup.bootstrap.in (posix, _io,
    _codecs...). Read from the config.c and Setup.bootstrap installed next to the static
    libpython, else from the CPython source."""
    config_dir = os.path.dirname(os.path.realpath(libpython))
    candidates = [(os.path.join(config_dir, "config.c"),
                   os.path.join(config_dir, "Setup.bootstrap"))]
    if python_src:
        modules = os.path.join(python_src, "Modules")
        candidates.append((os.path.join(modules, "config.c.in"),
                           os.path.join(modules, "Setup.bootstrap.in")))
    for config_c, bootstrap in candidates:
        if os.path.isfile(config_c) and os.path.isfile(bootstrap):
            break
    else:
        raise NativeError(f"no config.c and Setup.bootstrap next to {libpython} and no "
                          f"--python-src: cannot tell the interpreter's core builtins")
    with open(config_c, encoding="utf-8") as source:
        text = source.read()
    static_part = text.split("ADDMODULE MARKER 2", 1)[-1]
    core = {name: None if function == "NULL" else function
            for name, function in re.findall(r'\{"(\w+)",\s*(\w+)\}', static_part)}
    with open(bootstrap, encoding="utf-8") as lines:
        for line in lines:
            words = line.split("#", 1)[0].split()
            if words and re.fullmatch(r"\w+", words[0]):
                core.setdefault(words[0], f"PyInit_{words[0]}")
    return core


def libpython_modules(nm, libpython):
    """Names of the modules whose init function the static library defines (and the
    builtins and sys modules, which have none)."""
    output = subprocess.run(nm + ["--defined-only", libpython], check=True,
                            capture_output=True, text=True).stdout
    symbols = set(re.findall(r" T (\w+)$", output, re.MULTILINE))
    names = {m[len("PyInit_"):] for m in symbols if m.startswith("PyInit_")}
    # Core modules with other init functions (marshal: PyMarshal_Init, _warnings:
    # _PyWarnings_Init) are part of libpython by construction.
    names.update(("builtins", "sys", "marshal", "_warnings"))
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


class _SetupEntry:
    """A module line of Modules/Setup.stdlib.in: its C sources (paths), the -I/-D flags it
    gives, and the static archives of the tree it links (paths relative to the tree)."""

    def __init__(self, sources, cflags, archives):
        self.sources = sources
        self.cflags = cflags
        self.archives = archives


def _source_flags(words, python_src):
    return [w.replace("$(srcdir)", python_src) for w in words if w[:2] in ("-I", "-D")]


def _setup_stdlib_entries(python_src):
    """name -> _SetupEntry from Modules/Setup.stdlib.in (entries commented out, like
    3.11's _ctypes, built by setup.py there, are skipped)."""
    modules = os.path.join(python_src, "Modules")
    entries = {}
    with open(os.path.join(modules, "Setup.stdlib.in"), encoding="utf-8") as lines:
        for line in lines:
            words = re.sub(r"^@MODULE_\w+_TRUE@", "", line.split("#", 1)[0]).split()
            if len(words) > 1 and re.fullmatch(r"\w+", words[0]):
                entries[words[0]] = _SetupEntry(
                    [os.path.join(modules, w) for w in words[1:] if w.endswith(".c")],
                    _source_flags(words[1:], python_src),
                    [w for w in words[1:] if w.endswith(".a")])
    return entries


def _archive_entry(python_src, archive):
    """The sources and flags of a static archive the Makefile builds from the tree (3.13's
    `Modules/_hacl/libHacl_Hash_SHA2.a` of _sha2), from Makefile.pre.in: LIBHACL_SHA2_A
    names it, LIBHACL_SHA2_OBJS its objects, LIBHACL_CFLAGS their flags."""
    with open(os.path.join(python_src, "Makefile.pre.in"), encoding="utf-8",
              errors="replace") as makefile:
        text = makefile.read().replace("\\\n", " ")
    variables = {m.group(1): m.group(2).strip()
                 for m in re.finditer(r"^(\w+)\s*=(.*)$", text, re.MULTILINE)}
    variable = next((name for name, value in variables.items()
                     if value == archive and name.endswith("_A")), None)
    if variable is None:
        raise NativeError(f"Setup.stdlib.in names {archive}, which Makefile.pre.in does "
                          f"not build")
    objects = variables.get(variable[:-2] + "_OBJS", "").split()
    cflags = variables.get(variable.split("_")[0] + "_CFLAGS", "").split()
    return _SetupEntry([os.path.join(python_src, o[:-2] + ".c") for o in objects],
                       _source_flags(cflags, python_src), [])


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
    entries = _setup_stdlib_entries(python_src)
    if name == "_ctypes":
        # Setup.stdlib.in lists _ctypes from 3.12 on; 3.11 built it with setup.py.
        if "_ctypes" in entries:
            sources = entries["_ctypes"].sources
        else:
            sources = [os.path.join(modules, s) for s in (
                "_ctypes/_ctypes.c", "_ctypes/callbacks.c", "_ctypes/callproc.c",
                "_ctypes/stgdict.c", "_ctypes/cfield.c")]
        return NativeModule("_ctypes", sources, _ffi_defines(cc, cflags), ["ffi", "dl"])
    if name in NEEDS_EXTERNAL_LIBRARY or name not in entries:
        return None
    entry = entries[name]
    sources, cflags = list(entry.sources), list(entry.cflags)
    for archive in entry.archives:
        built = _archive_entry(python_src, archive)
        sources += built.sources
        cflags += [flag for flag in built.cflags if flag not in cflags]
    return NativeModule(name, sources, cflags, libraries=["m"])


def library_arguments(cc, flags, libraries):
    """Linker arguments for `libraries`: the static archive when the toolchain has one
    (nothing more to install on the target), else the shared library. Archives are
    looked up in the -L directories of `flags` (gcc's -print-file-name ignores them),
    then where the compiler looks."""
    search_dirs = [f[2:] for f in flags if f.startswith("-L") and len(f) > 2]
    arguments = []
    for library in libraries:
        if library in ("dl", "m"):  # part of the C library, always shared
            arguments.append(f"-l{library}")
            continue
        archive = next((os.path.join(d, f"lib{library}.a") for d in search_dirs
                        if os.path.isfile(os.path.join(d, f"lib{library}.a"))), None)
        if archive is None:
            found = subprocess.run(cc + flags + [f"-print-file-name=lib{library}.a"],
                                   check=True, capture_output=True, text=True).stdout.strip()
            archive = found if os.path.isabs(found) and os.path.isfile(found) else None
        arguments.append(archive or f"-l{library}")
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
