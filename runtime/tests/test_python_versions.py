"""The runtime works on every CPython the Yocto layer can meet (3.11 through 3.14): what
the package imports exists on the interpreter running these tests (CI runs them on
Debian 12's 3.11 and on the newest CPython tools/setup builds), and nothing it names was
removed from the standard library up to 3.14 (checked statically, on any interpreter).

Private modules (`_socket`, `_json`, `_sha2`...) are the point: they are no API and have
been renamed or dropped without deprecation (3.12 merged `_sha256` into `_sha2`).
"""

import ast
import importlib
import os
import sys
import sysconfig
import warnings

import pytest

# In-process checks of the package's source: no root, no container.
pytestmark = pytest.mark.unit

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.dirname(HERE)
PACKAGE_DIR = os.path.join(RUNTIME, "slruntime")
sys.path.insert(0, os.path.join(RUNTIME, "compact"))
import import_closure  # noqa: E402  (the compact build's reading of imports)

# Removed from the standard library in 3.12, 3.13 and 3.14 (each release's What's New,
# "Removed"; 3.12 merged _sha256 and _sha512 into _sha2): modules, then attributes of
# modules that remain.
REMOVED_MODULES = {
    "distutils": (3, 12), "imp": (3, 12), "asynchat": (3, 12), "asyncore": (3, 12),
    "smtpd": (3, 12), "_sha256": (3, 12), "_sha512": (3, 12),
    "aifc": (3, 13), "audioop": (3, 13), "cgi": (3, 13), "cgitb": (3, 13), "chunk": (3, 13),
    "crypt": (3, 13), "_crypt": (3, 13), "imghdr": (3, 13), "mailcap": (3, 13),
    "msilib": (3, 13), "nis": (3, 13), "nntplib": (3, 13), "ossaudiodev": (3, 13),
    "pipes": (3, 13), "sndhdr": (3, 13), "spwd": (3, 13), "sunau": (3, 13),
    "telnetlib": (3, 13), "uu": (3, 13), "xdrlib": (3, 13), "lib2to3": (3, 13),
    "tkinter.tix": (3, 13),
}
REMOVED_ATTRIBUTES = {
    ("ssl", "wrap_socket"): (3, 12), ("ssl", "match_hostname"): (3, 12),
    ("configparser", "SafeConfigParser"): (3, 12), ("configparser", "readfp"): (3, 12),
    ("unittest", "findTestCases"): (3, 13), ("unittest", "makeSuite"): (3, 13),
    ("unittest", "getTestCaseNames"): (3, 13), ("locale", "resetlocale"): (3, 13),
    ("typing", "io"): (3, 13), ("typing", "re"): (3, 13),
    ("ast", "Num"): (3, 14), ("ast", "Str"): (3, 14), ("ast", "Bytes"): (3, 14),
    ("ast", "NameConstant"): (3, 14), ("ast", "Ellipsis"): (3, 14),
    ("pkgutil", "find_loader"): (3, 14), ("pkgutil", "get_loader"): (3, 14),
    ("pty", "master_open"): (3, 14), ("pty", "slave_open"): (3, 14),
    ("sqlite3", "version"): (3, 14), ("sqlite3", "version_info"): (3, 14),
    ("urllib.request", "URLopener"): (3, 14), ("urllib.request", "FancyURLopener"): (3, 14),
    ("asyncio", "get_child_watcher"): (3, 14), ("asyncio", "set_child_watcher"): (3, 14),
    ("importlib.abc", "ResourceReader"): (3, 14), ("importlib.abc", "Traversable"): (3, 14),
    ("importlib.abc", "TraversableResources"): (3, 14),
}


def package_sources():
    """(module name, path) of every .py file of the package."""
    for directory, subdirs, files in os.walk(PACKAGE_DIR):
        subdirs.sort()
        relative = os.path.relpath(directory, RUNTIME).replace(os.sep, ".")
        for filename in sorted(files):
            if filename.endswith(".py"):
                stem = filename[:-3]
                yield (relative if stem == "__init__" else f"{relative}.{stem}",
                       os.path.join(directory, filename))


class Imports(ast.NodeVisitor):
    """What one module imports on a Python `version` (default: this one), as the compact
    build reads it (branches dead there, like `if sys.version_info >= (3, 12)` on 3.11,
    skipped), and the `alias.attribute` uses of modules bound by `import M [as alias]`."""

    def __init__(self, name, path, version=None):
        with open(path, "rb") as source:
            tree = ast.parse(source.read(), path)
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        # import_closure evaluates version tests against the build Python's version, a
        # class attribute of its condition evaluator: set for this reading only.
        here = import_closure._Platform.version_info
        import_closure._Platform.version_info = version or here
        try:
            collector = import_closure._ImportCollector(tree, skip_script_functions=False)
        finally:
            import_closure._Platform.version_info = here
        self.modules = {}  # module -> names imported from it
        for target, fromlist, level, optional, lazy in collector.found:
            if level:
                base = package.split(".")[: len(package.split(".")) - level + 1]
                target = ".".join(base + ([target] if target else []))
            self.modules.setdefault(target, set()).update(fromlist)
        self.aliases = {}  # local name -> module, of plain `import M [as alias]`
        self.attributes = set()  # (module, attribute)
        self.visit(tree)

    def visit_Import(self, node):
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                self.aliases.setdefault(alias.name.split(".")[0], alias.name.split(".")[0])

    def visit_Attribute(self, node):
        dotted = import_closure._dotted(node)
        if dotted and "." in dotted:
            head, _, attribute = dotted.rpartition(".")
            first, _, rest = head.partition(".")
            if first in self.aliases:
                module = self.aliases[first] + ("." + rest if rest else "")
                self.attributes.add((module, attribute))
        self.generic_visit(node)


SOURCES = list(package_sources())
PARSED = {name: Imports(name, path) for name, path in SOURCES}


def _resolves(module, name):
    """`name` is an attribute of `module` or one of its submodules."""
    if hasattr(module, name):
        return True
    try:
        importlib.import_module(f"{module.__name__}.{name}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(PARSED))
def test_every_import_resolves_on_this_python(name):
    """Each module and name the package imports (at module level or inside functions:
    those are the lazy paths of some command) exists here."""
    problems = []
    for target, names in sorted(PARSED[name].modules.items()):
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            problems.append(f"import {target}: {error}")
            continue
        problems += [f"from {target} import {n}: no such name" for n in sorted(names)
                     if n != "*" and not _resolves(module, n)]
    assert not problems, f"{name} on Python {sys.version.split()[0]}: {problems}"


@pytest.mark.parametrize("name", sorted(PARSED))
def test_module_attributes_exist_on_this_python(name):
    """`_socket.socket`, `os.pidfd_open`...: every attribute the package takes from a
    module it imports whole exists here (private modules change without notice)."""
    problems = []
    for module_name, attribute in sorted(PARSED[name].attributes):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a package-local name or an import already reported above
        if not _resolves(module, attribute):
            problems.append(f"{module_name}.{attribute}")
    assert not problems, f"{name} on Python {sys.version.split()[0]}: {problems}"


@pytest.mark.parametrize("version", [(3, 12, 0), (3, 13, 0), (3, 14, 0)])
def test_nothing_removed_is_used(version):
    """Static, so it holds on 3.11 too: what the package imports on 3.X (version tests
    evaluated for 3.X) uses no module or attribute removed up to 3.X."""
    used = []
    for name, path in SOURCES:
        imports = Imports(name, path, version)
        for target, names in imports.modules.items():
            used += [f"{name}: {candidate} (removed in {REMOVED_MODULES[candidate]})"
                     for candidate in [target] + [f"{target}.{n}" for n in names]
                     if REMOVED_MODULES.get(candidate, version) < version]
            used += [f"{name}: from {target} import {n} (removed in "
                     f"{REMOVED_ATTRIBUTES[target, n]})" for n in names
                     if REMOVED_ATTRIBUTES.get((target, n), version) < version]
        used += [f"{name}: {m}.{a} (removed in {REMOVED_ATTRIBUTES[m, a]})"
                 for m, a in imports.attributes
                 if REMOVED_ATTRIBUTES.get((m, a), version) < version]
    assert not used


@pytest.mark.parametrize("name", sorted(PARSED))
def test_compiles_without_warnings_on_this_python(name):
    """Compiling warns on stderr where no .pyc exists (a read-only target, the compact
    build): invalid escape sequences are a SyntaxWarning from 3.12 on."""
    path = dict(SOURCES)[name]
    with open(path, "rb") as source, warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(source.read(), path, "exec")


class _FinallyExits(ast.NodeVisitor):
    """return/break/continue leaving a finally block (PEP 765: a SyntaxWarning from 3.14
    on, which this interpreter may predate)."""

    def __init__(self):
        self.found = []

    def visit_Try(self, node):
        for statement in node.finalbody:
            self._exits(statement, in_loop=False)
        self.generic_visit(node)

    visit_TryStar = visit_Try

    def _exits(self, node, in_loop):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return
        if isinstance(node, ast.Return) or (
                isinstance(node, (ast.Break, ast.Continue)) and not in_loop):
            self.found.append(node.lineno)
        loop = isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        for child in ast.iter_child_nodes(node):
            self._exits(child, in_loop or loop)


def test_no_return_break_or_continue_out_of_finally():
    found = []
    for name, path in SOURCES:
        with open(path, "rb") as source:
            visitor = _FinallyExits()
            visitor.visit(ast.parse(source.read(), path))
        found += [f"{path}:{line}" for line in visitor.found]
    assert not found


def test_private_sha256_module_matches_hashlib():
    """The seccomp cache's SHA-256 comes from CPython's private module of this version
    (_sha256 up to 3.11, _sha2 from 3.12): same digests as hashlib's."""
    import hashlib

    from slruntime import seccomp

    data = b"slruntime seccomp cache" * 100
    assert seccomp.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    assert seccomp._digest("key", b"program") == hashlib.sha256(b"keyprogram").digest()


def test_compact_closure_resolves_on_this_python():
    """The compact build's import closure of the package (every module, its
    dependencies, the stdlib modules they reach) derives on this interpreter (an
    unconditional import of a missing module would stop the build), and every module it
    requires imports here."""
    stdlib = sysconfig.get_path("stdlib")
    search = [RUNTIME, sysconfig.get_path("purelib"), stdlib,
              os.path.join(stdlib, "lib-dynload")]
    closure = import_closure.ImportClosure(search, [stdlib], sys.builtin_module_names,
                                           ["slruntime"], ["slruntime.profile"])
    for root in import_closure.package_modules(PACKAGE_DIR, "slruntime"):
        if not root.startswith("slruntime.profile"):
            closure.add(root)
    # Every module it requires imports here, those with no file of their own too (set by
    # their parent package: os.path by os, collections.abc by collections from 3.13 on).
    found = set(closure.modules) | set(closure.extensions) | set(closure.missing)
    for name in sorted(closure.required() & found):
        importlib.import_module(name)
