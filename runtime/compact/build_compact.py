#!/usr/bin/env python3
"""Builds the compact slr: one executable holding a static CPython, the slruntime package
and exactly the stdlib modules it can import, frozen, with _ctypes, _json and _prctl
compiled in as builtins. See README.md in this directory for the options and the
cross-compilation (Yocto) use.

Run it with a Python of the target's major.minor version: it compiles the bytecode.
"""

import _imp
import argparse
import ast
import os
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import generate_c  # noqa: E402  (modules of this tool, next to it)
import import_closure  # noqa: E402
import native_modules  # noqa: E402
import sources  # noqa: E402

DEFAULT_PACKAGE_DIR = os.path.join(os.path.dirname(HERE), "slruntime")
DEFAULT_ENTRY_POINT = "slruntime.cli:main"
START_PATH = os.path.join(HERE, "start_path.txt")
# Imported by the interpreter itself while it starts (the codec registry and the UTF-8
# codec of stdio) or by codecs.lookup() for the encodings any runtime code may name.
STARTUP_MODULES = ("encodings", "encodings.aliases", "encodings.utf_8", "encodings.ascii",
                   "encodings.latin_1")
# C modules the compact binary always links in when anything imports them, even where the
# import is guarded: the pure-Python fallbacks are slower (json) or absent (prctl).
WANTED_NATIVE = ("_ctypes", "_json", "_prctl")
PRCTL_VERSION = "1.8.1"
# The front's warnings; test_pool_client_c.py also compiles its files with -Werror (not
# done here: a newer target compiler's new warning should not fail a product build).
FRONT_WARNINGS = ["-std=c11", "-Wall", "-Wextra"]
# The front is linked statically (no dynamic loader, no shared libc mapped: half the
# memory of a dynamic link) and built for size: each function and object in a section of
# its own, the unused ones dropped by the linker.
FRONT_FLAGS = ["-Os", "-ffunction-sections", "-fdata-sections"]
FRONT_LINK_FLAGS = ["-static", "-Wl,--gc-sections"]
FRONT_SOURCES = ("slr_front.c", "pool_client.c", "terminal_relay.c")
# slr commands that run on a build host, not on the device, left out unless
# --with-host-commands: they need what a frozen binary cannot carry.
HOST_COMMAND_PACKAGES = {
    "slruntime.profile": "`slr profile` disassembles an image's code with capstone, "
                         "whose libcapstone.so is found next to capstone's __file__",
}


class BuildError(Exception):
    """The build cannot proceed; the message says why."""


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="Freeze slr and the stdlib modules it needs into one executable, the "
                    "frozen runtime, and build the static front that executes it.")
    parser.add_argument("--output", required=True,
                        help="path of the executable to write: the static front (slr_front.c), "
                        "the `slr` users run")
    parser.add_argument("--frozen-output", help="path of the frozen runtime to write "
                        "(default: OUTPUT's directory/libexec/slruntime/OUTPUT's name)")
    parser.add_argument("--frozen-path", help="absolute path the front executes the frozen "
                        "runtime from, as installed (default: --frozen-output's absolute path)")
    parser.add_argument("--front-only", action="store_true",
                        help="build only the front (for a frozen runtime built before); "
                        "needs --frozen-path")
    parser.add_argument("--package-dir", default=DEFAULT_PACKAGE_DIR,
                        help="the slruntime package directory (default: %(default)s)")
    parser.add_argument("--entry-point", default=DEFAULT_ENTRY_POINT,
                        help="module:function to run; its return value is the exit status "
                        "as with sys.exit() (default: %(default)s)")
    parser.add_argument("--cc", help="C compiler command, may hold flags "
                        "(default: $CC, else cc)")
    parser.add_argument("--nm", help="nm of the target toolchain (default: $NM, else the "
                        "compiler's prefix + nm, else nm)")
    parser.add_argument("--python-include", help="directory of the target's Python.h "
                        "(default: this Python's)")
    parser.add_argument("--libpython", help="the target's static libpythonX.Y.a "
                        "(default: this Python's)")
    parser.add_argument("--stdlib", help="the target's stdlib directory with the .py files "
                        "(default: this Python's)")
    parser.add_argument("--path", action="append", default=None, metavar="DIR",
                        help="directory of pure-Python dependencies (pyseccomp, prctl); "
                        "repeatable (default: this Python's site-packages)")
    parser.add_argument("--python-src", help="CPython source tree of the target's version "
                        "(its Modules/ compiles the C modules libpython lacks)")
    parser.add_argument("--prctl-src", help="python-prctl source tree (_prctlmodule.c, "
                        "prctl.py)")
    parser.add_argument("--sources-cache", help="fetch CPython and python-prctl sources "
                        "into this directory when --python-src/--prctl-src are not given "
                        "(Debian hosts: apt-get source, pip download)")
    parser.add_argument("--extra-module", action="append", default=[], metavar="NAME",
                        help="freeze this module too (and what it imports); repeatable")
    parser.add_argument("--exclude-module", action="append", default=[], metavar="NAME",
                        help="leave out this module or package (of the stdlib, a dependency "
                        "or slruntime itself, e.g. a host-only subcommand); its imports "
                        "fail in the binary; repeatable")
    parser.add_argument("--with-host-commands", action="store_true",
                        help="also freeze the host-side commands' packages (" +
                        ", ".join(HOST_COMMAND_PACKAGES) + "), left out by default")
    parser.add_argument("--optimize", type=int, choices=(0, 1, 2), default=0,
                        help="bytecode optimisation level, as python -O (default: 0)")
    parser.add_argument("--import-time", action="store_true",
                        help="a profiling build: the binary reports every import on stderr "
                             "as python -X importtime does")
    parser.add_argument("--build-dir", help="intermediate files (default: OUTPUT.build)")
    parser.add_argument("--no-strip", action="store_true", help="keep symbols")
    return parser.parse_args(argv)


def header_version(include_dir):
    """PY_VERSION of the headers, e.g. "3.11.2"."""
    patchlevel = os.path.join(include_dir, "patchlevel.h")
    try:
        with open(patchlevel, encoding="utf-8") as header:
            for line in header:
                if line.startswith("#define PY_VERSION "):
                    return line.split('"')[1].rstrip("+")
    except OSError as error:
        raise BuildError(f"--python-include: cannot read {patchlevel}: {error.strerror}")
    raise BuildError(f"--python-include: no PY_VERSION in {patchlevel}")


def entry_point(args):
    module, _, function = args.entry_point.partition(":")
    if not module or not function:
        raise BuildError(f"entry point {args.entry_point!r} is not module:function")
    return module, function


def check_entry_point(closure, module, function):
    """The entry function must be defined at the top level of the entry module: the
    binary would otherwise only fail when run."""
    with open(closure.modules[module].path, "rb") as source:
        tree = ast.parse(source.read())
    defined = {node.name for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {target.id for node in tree.body if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    if function not in defined:
        raise BuildError(f"entry point: {module} defines no {function}")


def toolchain(args):
    cc = shlex.split(args.cc or os.environ.get("CC") or "cc")
    nm = args.nm or os.environ.get("NM")
    if not nm:
        compiler = os.path.basename(cc[0])
        prefix = compiler[: compiler.rfind("-") + 1] if "-" in compiler else ""
        nm = prefix + "nm" if prefix and shutil.which(prefix + "nm") else "nm"
    cflags = shlex.split(os.environ.get("CFLAGS", ""))
    ldflags = shlex.split(os.environ.get("LDFLAGS", ""))
    return cc, shlex.split(nm), cflags, ldflags


def run(command, what):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"{what} failed: {shlex.join(command)}\n{result.stderr.strip()}")


class Target:
    """The interpreter built for: headers, static library, stdlib, and their version."""

    def __init__(self, args):
        self.include = args.python_include or sysconfig.get_config_var("INCLUDEPY")
        self.libpython = args.libpython or os.path.join(sysconfig.get_config_var("LIBPL"),
                                                        sysconfig.get_config_var("LIBRARY"))
        self.stdlib = args.stdlib or sysconfig.get_path("stdlib")
        self.version = header_version(self.include)
        here = "%d.%d" % sys.version_info[:2]
        if ".".join(self.version.split(".")[:2]) != here:
            raise BuildError(f"the target is Python {self.version} but this is Python "
                             f"{here}: run the tool with a Python "
                             f"{self.version.rsplit('.', 1)[0]}")
        if args.stdlib is None and self.version != "%d.%d.%d" % sys.version_info[:3]:
            raise BuildError(f"the target is Python {self.version} but this is Python "
                             f"{sys.version.split()[0]}: pass the target's --stdlib")
        for path, option in ((self.libpython, "--libpython"), (self.stdlib, "--stdlib"),
                             (args.package_dir, "--package-dir")):
            if not os.path.exists(path):
                raise BuildError(f"{option}: {path} does not exist")


def fetched(args, fetch, *fetch_args):
    """A source directory fetched into --sources-cache, or None without a cache."""
    if not args.sources_cache:
        return None
    try:
        return fetch(os.path.abspath(args.sources_cache), *fetch_args)
    except sources.FetchError as error:
        raise BuildError(f"fetching sources: {error}")


def start_path_modules():
    """The names start_path.txt lists: the modules the common commands import, whose
    bytecode goes first in the blob (see that file)."""
    with open(START_PATH, encoding="utf-8") as listed:
        return [line.strip() for line in listed if line.strip() and not line.startswith("#")]


def derive_modules(args, target, in_libpython, prctl_src, entry_module, excluded):
    """The import closure of the runtime (see import_closure.py)."""
    package_name = os.path.basename(os.path.abspath(args.package_dir))
    # Where modules come from, in order: the package, python-prctl's source, the
    # pure-Python dependencies, the target's stdlib and its C extensions.
    dependency_dirs = args.path if args.path is not None else site.getsitepackages()
    search_path = [os.path.dirname(os.path.abspath(args.package_dir))]
    search_path += [prctl_src] if prctl_src else []
    search_path += dependency_dirs + [target.stdlib, os.path.join(target.stdlib, "lib-dynload")]
    closure = import_closure.ImportClosure(
        search_path, [target.stdlib], in_libpython | set(WANTED_NATIVE), [package_name],
        excluded)
    roots = (list(STARTUP_MODULES) + [entry_module]
             + import_closure.package_modules(args.package_dir, package_name)
             + args.extra_module)
    try:
        for root in roots:
            if not any(root == e or root.startswith(e + ".") for e in excluded):
                closure.add(root)
    except import_closure.ClosureError as error:
        raise BuildError(str(error))
    return closure


def plan_c_modules(args, target, closure, in_libpython, prctl_src, cc, cflags):
    """(builtins, compiled, left_out): the inittab's names, the NativeModules to compile,
    and {name: importer} of C modules left out.

    A C module libpython lacks is compiled when it is required (ImportClosure.required)
    or one of WANTED_NATIVE, and left out otherwise: reached only through guarded
    imports, or lazy imports in rarely used stdlib functions such as logging.handlers'
    SMTP handler -> ssl -> _ssl. (Compiling those too would risk failing builds on
    modules with build needs of their own, e.g. 3.14's _blake2 and its HACL sources.)"""
    required = closure.required() | set(WANTED_NATIVE)
    missing = sorted(set(closure.extensions) - in_libpython)
    python_src = args.python_src
    if python_src is None and (set(missing) & required) - {"_prctl"}:
        python_src = fetched(args, sources.cpython_modules, target.version)
    compiled, left_out = [], {}
    for name in missing:
        importer = closure.extensions[name]
        if name not in required:
            left_out[name] = importer
            continue
        try:
            recipe = native_modules.recipe(name, python_src, prctl_src, cc, cflags)
        except native_modules.NativeError as error:
            raise BuildError(f"C module {name}: {error}")
        if recipe is not None:
            compiled.append(recipe)
        else:
            hint = "--prctl-src" if name == "_prctl" else "--python-src"
            raise BuildError(f"C module {name} (imported by {importer}) is not in "
                             f"{target.libpython} and has no source: pass {hint} "
                             f"(or --sources-cache)")
    try:
        core = native_modules.core_modules(target.libpython, python_src)
    except native_modules.NativeError as error:
        raise BuildError(str(error))
    builtins = set(core) | (set(closure.extensions) - set(left_out))
    absent = sorted(builtins - in_libpython - {m.name for m in compiled})
    if absent:
        raise BuildError(f"{target.libpython} lacks the core modules {', '.join(absent)}")
    return builtins, core, compiled, left_out


def build(args):
    frozen_output, frozen_path = frozen_layout(args)
    build_dir = os.path.abspath(args.build_dir or args.output + ".build")
    if args.front_only:
        if not args.frozen_path:
            raise BuildError("--front-only needs --frozen-path (the runtime it executes)")
        build_front(args, frozen_path, build_dir)
        return
    cc, nm, cflags, ldflags = toolchain(args)
    target = Target(args)
    entry_module, entry_function = entry_point(args)
    excluded = list(args.exclude_module)
    if not args.with_host_commands:
        excluded += list(HOST_COMMAND_PACKAGES)

    in_libpython = native_modules.libpython_modules(nm, target.libpython)
    prctl_src = args.prctl_src or fetched(args, sources.prctl_source, PRCTL_VERSION)
    closure = derive_modules(args, target, in_libpython, prctl_src, entry_module, excluded)
    check_entry_point(closure, entry_module, entry_function)
    builtins, core, compiled, left_out = plan_c_modules(args, target, closure, in_libpython,
                                                        prctl_src, cc, cflags)
    # Modules the interpreter holds deep-frozen already (os, codecs, io...) stay its own.
    in_interpreter = set(_imp._frozen_module_names())
    frozen = [closure.modules[n] for n in sorted(closure.modules) if n not in in_interpreter]
    start_rank = {name: rank for rank, name in enumerate(start_path_modules())}
    frozen.sort(key=lambda module: start_rank.get(module.name, len(start_rank)))
    for module in frozen:
        if module.is_app:
            warn_about_file_use(module)

    os.makedirs(build_dir, exist_ok=True)
    table_c = os.path.join(build_dir, "frozen_modules.c")
    blob_size = generate_c.write_frozen_table(
        table_c, os.path.join(build_dir, "frozen_modules.bin"), frozen, entry_module,
        entry_function, args.optimize)
    inittab_c = os.path.join(build_dir, "inittab.c")
    generate_c.write_inittab(inittab_c, {n: core.get(n, f"PyInit_{n}") for n in builtins})
    write_manifest(os.path.join(build_dir, "modules.txt"), closure, frozen, in_interpreter,
                   builtins, compiled, left_out)

    python_flags = ["-I", target.include, "-O2", "-DNDEBUG", "-fwrapv"]
    # The binary reads no PYTHON* variable nor -X option: profiling is a build of its own.
    main_flags = ["-DSLR_IMPORT_TIME"] if args.import_time else []
    objects = [compile_c(cc, cflags + python_flags + main_flags, os.path.join(HERE, "slr_main.c"),
                         build_dir)]
    objects += [compile_c(cc, cflags + python_flags, source, build_dir)
                for source in (table_c, inittab_c)]
    for recipe in compiled:
        flags = cflags + python_flags + recipe.cflags
        if recipe.core:
            flags += ["-I", os.path.join(target.include, "internal"), "-DPy_BUILD_CORE_BUILTIN"]
        objects += [compile_c(cc, flags, source, build_dir, prefix=recipe.name)
                    for source in recipe.sources]
    libraries = dict.fromkeys(lib for recipe in compiled for lib in recipe.libraries)
    # -no-pie: Debian's libpython3.11.a is not position independent. --as-needed: the
    # libraries of builtins libpython has but the inittab leaves out are not linked.
    link = (cc + cflags + ldflags + ["-no-pie", "-o", frozen_output] + objects
            + [target.libpython, "-Wl,--as-needed"]
            + native_modules.library_arguments(cc, cflags + ldflags, libraries)
            + native_modules.libpython_link_libraries(target.libpython)
            + ([] if args.no_strip else ["-s"]))
    os.makedirs(os.path.dirname(os.path.abspath(frozen_output)), exist_ok=True)
    run(link, "linking")
    print(f"{frozen_output}: {len(frozen)} frozen modules ({blob_size // 1024} KiB bytecode), "
          f"{len(builtins)} builtins ({len(compiled)} compiled here: "
          f"{', '.join(r.name for r in compiled) or 'none'}), "
          f"{os.path.getsize(frozen_output) // 1024} KiB; list in {build_dir}/modules.txt")
    build_front(args, frozen_path, build_dir)


def frozen_layout(args):
    """(where the frozen runtime is written, the absolute path the front executes it
    from). By default it sits in libexec/slruntime/ next to the front, the layout of an
    installation (bin/slr, libexec/slruntime/slr), under the front's name: the process
    name (`ps`, /proc/PID/comm) stays the front's."""
    output, frozen_output = os.path.abspath(args.output), frozen_output_of(args)
    frozen_path = args.frozen_path or os.path.abspath(frozen_output)
    if not os.path.isabs(frozen_path):
        raise BuildError(f"--frozen-path {frozen_path}: not an absolute path (the front "
                         f"never searches for the runtime)")
    if os.path.abspath(frozen_output) == output:
        raise BuildError(f"--frozen-output {frozen_output} is the front's --output")
    return frozen_output, frozen_path


def frozen_output_of(args):
    output = os.path.abspath(args.output)
    return args.frozen_output or os.path.join(os.path.dirname(output), "libexec", "slruntime",
                                              os.path.basename(output))


def c_string(text):
    """text as a C string literal: printable ASCII as is, every other byte escaped."""
    escaped = "".join(chr(b) if 0x20 <= b < 0x7f and chr(b) not in '"\\?' else f"\\{b:03o}"
                      for b in os.fsencode(text))
    return f'"{escaped}"'


def build_front(args, frozen_path, build_dir):
    """The static front at --output, executing the frozen runtime from frozen_path."""
    cc, _, cflags, ldflags = toolchain(args)
    os.makedirs(build_dir, exist_ok=True)
    with open(os.path.join(build_dir, "slr_front_path.h"), "w", encoding="ascii") as header:
        header.write(f"/* build_compact.py --frozen-path */\n"
                     f"#define SLR_FROZEN_PATH {c_string(frozen_path)}\n")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    run(cc + cflags + FRONT_FLAGS + FRONT_WARNINGS + ["-I", build_dir] + ldflags + FRONT_LINK_FLAGS
        + ["-o", args.output] + [os.path.join(HERE, source) for source in FRONT_SOURCES]
        + ([] if args.no_strip else ["-s"]), "linking the front")
    print(f"{args.output}: the static front, {os.path.getsize(args.output) // 1024} KiB; "
          f"executes {frozen_path}")


def compile_c(cc, flags, source, build_dir, prefix="slr"):
    obj = os.path.join(build_dir, f"{prefix}-{os.path.basename(source)[:-2]}.o")
    run(cc + flags + ["-c", source, "-o", obj], f"compiling {source}")
    return obj


def warn_about_file_use(module):
    """Frozen modules have no __file__: say where the package relies on one."""
    with open(module.path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if "__file__" in line and not line.lstrip().startswith("#"):
                print(f"warning: {module.path}:{number}: uses __file__, which frozen "
                      f"modules do not have", file=sys.stderr)


def write_manifest(path, closure, frozen, in_interpreter, builtins, compiled, left_out):
    """modules.txt: every module of the binary, how it is provided and who imports it."""
    compiled_names = {r.name for r in compiled}
    lines = ["# kind name <- first importer (build_compact.py; see README.md)"]
    for m in frozen:
        lines.append(f"frozen {m.name} <- {m.importer}")
    # os.path is not a module file but set by os, deep-frozen with it.
    importers = {**closure.missing, **{n: m.importer for n, m in closure.modules.items()}}
    for name in sorted(set(importers) & in_interpreter):
        lines.append(f"frozen-in-libpython {name} <- {importers[name]}")
    for name in sorted(builtins):
        kind = "builtin-compiled" if name in compiled_names else "builtin"
        lines.append(f"{kind} {name} <- {closure.extensions.get(name, '<interpreter>')}")
    for name, importer in sorted(left_out.items()):
        lines.append(f"left-out {name} <- {importer}")
    for name, importer in sorted(closure.missing.items()):
        if name not in in_interpreter:
            lines.append(f"not-found-optional {name} <- {importer}")
    for name, importer in sorted(closure.excluded_imports.items()):
        lines.append(f"excluded {name} <- {importer}")
    with open(path, "w", encoding="utf-8") as manifest:
        manifest.write("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_arguments(argv)
    build_dir = args.build_dir or args.output + ".build"
    new_build_dir = not os.path.exists(build_dir)
    try:
        build(args)
    except BuildError as error:
        print(f"build_compact: {error}", file=sys.stderr)
        # A failed build leaves no output; a front-only build never touches the runtime.
        outputs = [args.output] if args.front_only else [args.output, frozen_output_of(args)]
        for output in outputs:
            if os.path.exists(output):
                os.unlink(output)
        if new_build_dir:
            shutil.rmtree(build_dir, ignore_errors=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
