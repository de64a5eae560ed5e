"""Which modules a program can import: the static import closure of a set of root modules.

The compact binary has nothing on disk to fall back on, so the closure must hold every
module any code path can import, yet stay free of the hundreds of modules that plain
modulefinder drags in. The rules, applied to the parsed source (never executed):

- Every import counts, at module level or inside functions (lazy imports are real code
  paths of some command), except in branches that cannot run on Linux (`sys.platform ==
  "win32"`, `os.name == "nt"`, `sys.version_info < (3,)`, names bound to such tests like
  subprocess's `_mswindows`),
  under `if __name__ == "__main__"` or `if TYPE_CHECKING`.
- Imports made by standard library modules: those inside `main()`/`_test*()` helper
  functions are skipped, and so are the subsystems in EXCLUDED (never reached by a
  container runtime through the stdlib; see the reasons there).
- Imports made by application modules (found outside the standard library: the package
  and its pure-Python dependencies) are always followed, EXCLUDED or not; in the package
  itself an unconditional import of a missing module is an error.
- `extra_excluded` names (the build's --exclude-module) are never followed, from anywhere.
- `importlib.import_module("x")` and `__import__("x")` with a literal name count.
- An import inside `try: ... except ImportError` (or a broader handler) is optional: when
  not found, it is skipped.

C extension modules are recorded separately (name -> importer) for the caller to map to
builtins in the static libpython or to sources it compiles in.
"""

import ast
import os
import sys

# Standard library subsystems a container runtime never reaches through the stdlib: they
# enter a naive closure through lazy imports in rarely used stdlib functions (e.g. `shutil`
# archive helpers -> `tarfile`, `warnings` -> `tracemalloc`). Imports of them by
# application modules are still followed.
EXCLUDED = {
    "__main__": "the frozen binary has no script",
    "_pydecimal": "decimal's pure-Python twin; _decimal is not used",
    "asyncio": "no event loop in the runtime",
    "bdb": "debugger",
    "concurrent": "thread/process pools, not used",
    "ctypes.macholib": "macOS library lookup (ctypes.util on darwin only)",
    "ctypes.wintypes": "Windows",
    "curses": "terminal UI",
    "dbm": "databases",
    "distutils": "packaging",
    "doctest": "tests",
    "email": "mail handling (reached via urllib/http only)",
    "ensurepip": "packaging",
    "http": "web clients/servers",
    "idlelib": "IDE",
    "lib2to3": "code translation",
    "logging.config": "file-based logging configuration",
    "mailbox": "mail handling",
    "multiprocessing": "process pools, not used (the runtime forks itself)",
    "pdb": "debugger",
    "pickletools": "debug tool",
    "profile": "profiler",
    "cProfile": "profiler",
    "pstats": "profiler",
    "pydoc": "help system (reached via inspect-based help())",
    "pydoc_data": "help system",
    "sqlite3": "databases",
    "test": "CPython's test suite",
    "tkinter": "GUI",
    "turtle": "GUI",
    "turtledemo": "GUI",
    "unittest": "tests",
    "urllib.request": "web client",
    "venv": "packaging",
    "wsgiref": "web server",
    "xml": "XML processing",
    "xmlrpc": "XML-RPC",
    "zipfile": "archives (reached via importlib.metadata/shutil archives)",
    "tarfile": "archives (reached via shutil.unpack_archive)",
    "importlib._bootstrap": "always present as the interpreter's _frozen_importlib",
    "importlib._bootstrap_external": "always present as _frozen_importlib_external",
    "importlib.metadata": "installed-distribution metadata, nothing installed",
    "importlib.resources": "package data files, the frozen binary has none",
    "lzma": "compression",
    "bz2": "compression",
    "gzip": "compression",
    "zlib": "compression",
    "_compression": "compression",
    "readline": "interactive console",
    "rlcompleter": "interactive console",
    "code": "interactive console",
    "codeop": "interactive console",
    "tracemalloc": "memory debugging (warnings uses it only with -X tracemalloc)",
    "_osx_support": "macOS",
    "_aix_support": "AIX",
    "_bootsubprocess": "interpreter build helper",
    "nturl2path": "Windows",
    "_winapi": "Windows",
    "winreg": "Windows",
    "msvcrt": "Windows",
    "_overlapped": "Windows",
    "nt": "Windows",
    "_scproxy": "macOS",
    "java": "Jython",
    "org": "Jython",
    "vms_lib": "VMS",
    "_dummy_thread": "Python 2 leftovers",
}


class ClosureError(Exception):
    """The closure cannot be computed: a module the application needs is missing."""


def _excluded(name):
    """Whether `name` is in EXCLUDED or in a package that is."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in EXCLUDED for i in range(1, len(parts) + 1))


class _Platform:
    """Evaluates the few conditions the stdlib uses to select platform code."""

    version_info = tuple(sys.version_info[:3])

    def __init__(self, constants):
        self.constants = constants  # module-level names bound to known booleans

    def value(self, node):
        """The condition's value on Linux, or None when it cannot be known statically."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in ("TYPE_CHECKING",):
                return False
            return self.constants.get(node.id)
        if isinstance(node, ast.Subscript):
            # sys.version_info[0] and the like: the build Python has the target's version.
            if _dotted(node.value) in ("sys.version_info", "_sys.version_info"):
                index = self.value(node.slice)
                if isinstance(index, int):
                    return self.version_info[index]
            return None
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted in ("sys.version_info", "_sys.version_info"):
                return self.version_info
            if dotted in ("sys.version_info.major", "_sys.version_info.major"):
                return self.version_info[0]
            if dotted in ("sys.platform", "_sys.platform"):
                return "linux"
            if dotted in ("os.name", "_os.name"):
                return "posix"
            if dotted in ("typing.TYPE_CHECKING", "t.TYPE_CHECKING"):
                return False
            return None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.value(node.operand)
            return None if inner is None else not inner
        if isinstance(node, ast.BoolOp):
            values = [self.value(v) for v in node.values]
            if isinstance(node.op, ast.And):
                if any(v is not None and not v for v in values):
                    return False
                return True if all(values) and None not in values else None
            if any(v is not None and v for v in values):
                return True
            return False if all(v is not None for v in values) else None
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            if isinstance(node.left, ast.Name) and node.left.id == "__name__":
                return False  # `if __name__ == "__main__"`: never true when imported
            left, right = self.value(node.left), self.value(node.comparators[0])
            if left is None or right is None:
                return None
            compare = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
                       ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
                       ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
                       ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}
            try:
                return compare[type(node.ops[0])](left, right)
            except (KeyError, TypeError):
                return None
        if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
            return tuple(e.value for e in node.elts)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "startswith" and len(node.args) == 1):
            subject, prefix = self.value(node.func.value), self.value(node.args[0])
            if isinstance(subject, str) and isinstance(prefix, (str, tuple)):
                return subject.startswith(prefix)
        return None


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _catches_import_error(handler):
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(_dotted(n) in ("ImportError", "ModuleNotFoundError", "Exception",
                               "BaseException", "AttributeError") for n in names)


class _ImportCollector:
    """Walks one module's AST; `found` lists (name, fromlist, level, optional, lazy)
    tuples: `optional` when guarded by an ImportError handler, `lazy` when inside a
    function (not run when the module is imported).

    With `skip_script_functions`, bodies of functions named like command-line or self-test
    helpers (`main`, `_main`, `_test*`, `test*`) are skipped: the stdlib imports argparse,
    statistics and the like there for `python -m module` use only.
    """

    def __init__(self, tree, skip_script_functions):
        self.found = []
        self.skip_script_functions = skip_script_functions
        self.platform = _Platform(self._module_constants(tree))
        self._walk(tree.body, optional=False, lazy=False)

    @staticmethod
    def _module_constants(tree):
        constants = {}
        platform = _Platform(constants)
        for stmt in tree.body:
            if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                value = platform.value(stmt.value)
                if isinstance(value, bool):
                    constants[stmt.targets[0].id] = value
        return constants

    def _is_script_function(self, stmt):
        return (self.skip_script_functions
                and isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
                and (stmt.name in ("main", "_main") or stmt.name.startswith(("_test", "test"))))

    def _walk(self, body, optional, lazy):
        for stmt in body:
            self._statement(stmt, optional, lazy)

    def _statement(self, stmt, optional, lazy):
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                self.found.append((alias.name, (), 0, optional, lazy))
        elif isinstance(stmt, ast.ImportFrom):
            names = tuple(a.name for a in stmt.names if a.name != "*")
            self.found.append((stmt.module or "", names, stmt.level, optional, lazy))
        elif isinstance(stmt, ast.If):
            value = self.platform.value(stmt.test)
            if value is None or value:
                self._walk(stmt.body, optional, lazy)
            if value is None or not value:
                self._walk(stmt.orelse, optional, lazy)
            self._calls(ast.walk(stmt.test), optional, lazy)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            guarded = optional or any(_catches_import_error(h) for h in stmt.handlers)
            self._walk(stmt.body, guarded, lazy)
            for handler in stmt.handlers:
                self._walk(handler.body, optional, lazy)
            self._walk(stmt.orelse, optional, lazy)
            self._walk(stmt.finalbody, optional, lazy)
        elif self._is_script_function(stmt):
            return
        else:
            lazy = lazy or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    self._walk(inner, optional, lazy)
            if isinstance(stmt, ast.Match):
                for case in stmt.cases:
                    self._walk(case.body, optional, lazy)
            self._calls(self._expressions(stmt), optional, lazy)

    def _calls(self, nodes, optional, lazy):
        """Literal importlib.import_module("x") / __import__("x") calls."""
        for node in nodes:
            if (isinstance(node, ast.Call) and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                    and _dotted(node.func) in ("importlib.import_module", "import_module",
                                               "__import__")):
                self.found.append((node.args[0].value, (), 0, optional, lazy))

    @staticmethod
    def _expressions(stmt):
        """The expression nodes of a statement, not those of its nested statements."""
        for field, value in ast.iter_fields(stmt):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, ast.AST) and not isinstance(
                        item, (ast.stmt, ast.excepthandler, ast.match_case)):
                    yield from ast.walk(item)


class Module:
    """A Python source module of the closure; `importer` is the first module to import it.

    Application modules are those found outside the standard library directories.
    """

    __slots__ = ("name", "path", "is_package", "is_app", "importer")

    def __init__(self, name, path, is_package, is_app, importer):
        self.name, self.path, self.is_package = name, path, is_package
        self.is_app, self.importer = is_app, importer


class ImportClosure:
    """The closure of the modules added with add(), found in `search_path` (directories).

    `stdlib_dirs` tells standard library modules from application ones. `native_names`
    are C modules known to the target (compiled into libpython or buildable); a name found
    as a `.so` in the search path is a C module too. Results: `modules` (Python sources to
    freeze), `extensions` (C module name -> importer), `missing` (optional imports not
    found),
    `excluded_imports` (imports left out by EXCLUDED or `extra_excluded`).
    A module of `strict_packages` (the runtime's own) importing a missing module
    unconditionally is an error; dependencies may carry dead Python 2 branches and such.
    """

    def __init__(self, search_path, stdlib_dirs, native_names, strict_packages,
                 extra_excluded=()):
        self.search_path = list(search_path)
        self.strict_packages = tuple(strict_packages)
        self.stdlib_dirs = tuple(os.path.join(os.path.abspath(d), "") for d in stdlib_dirs)
        self.native_names = set(native_names)
        self.extra_excluded = set(extra_excluded)
        self.modules = {}
        self.extensions = {}
        self.missing = {}
        self.excluded_imports = {}
        self.edges = []  # (importer, name, optional, lazy) of every import followed

    def _is_app_module(self, name):
        module = self.modules.get(name)
        return module is not None and module.is_app

    def _is_strict(self, name):
        return any(name == p or name.startswith(p + ".") for p in self.strict_packages)

    def _is_user_excluded(self, name):
        return any(name == e or name.startswith(e + ".") for e in self.extra_excluded)

    def _locate(self, name):
        """(path, is_package) of a Python source module, "extension", or None."""
        parts = name.split(".")
        if len(parts) > 1:
            parent = self.modules.get(".".join(parts[:-1]))
            if parent is None or not parent.is_package:
                return None
            dirs = [os.path.dirname(parent.path)]
        else:
            dirs = self.search_path
        leaf = parts[-1]
        for directory in dirs:
            package_init = os.path.join(directory, leaf, "__init__.py")
            if os.path.isfile(package_init):
                return package_init, True
            source = os.path.join(directory, leaf + ".py")
            if os.path.isfile(source):
                return source, False
            try:
                entries = os.listdir(directory)
            except OSError:
                continue
            if any(e.startswith(leaf + ".") and e.endswith(".so") for e in entries):
                return "extension"
        return None

    def add(self, name, importer="<root>", optional=False, lazy=False):
        """Adds `name`, its parent packages and everything they import; False if skipped."""
        self.edges.append((importer, name, optional, lazy))
        if name in self.modules or name in self.extensions:
            return True
        by_app = importer == "<root>" or self._is_app_module(importer)
        if self._is_user_excluded(name) or (_excluded(name) and not by_app):
            self.excluded_imports.setdefault(name, importer)
            return False
        if "." in name and not self.add(name.rpartition(".")[0], importer, optional, lazy):
            return False
        if name in self.native_names and "." not in name:
            self.extensions[name] = importer
            return True
        found = self._locate(name)
        if found is None:
            if not optional and (importer == "<root>" or self._is_strict(importer)):
                raise ClosureError(f"module {name} imported by {importer} not found in "
                                   f"{os.pathsep.join(self.search_path)}")
            self.missing.setdefault(name, importer)
            return False
        if found == "extension":
            self.extensions[name] = importer
            return True
        path, is_package = found
        is_app = not os.path.abspath(path).startswith(self.stdlib_dirs)
        module = Module(name, path, is_package, is_app, importer)
        self.modules[name] = module
        self._follow(module)
        return True

    def _follow(self, module):
        with open(module.path, "rb") as source:
            tree = ast.parse(source.read(), module.path)
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        collector = _ImportCollector(tree, skip_script_functions=not module.is_app)
        for target, fromlist, level, optional, lazy in collector.found:
            if level:
                base = package.split(".")
                if level > 1:
                    base = base[: len(base) - level + 1]
                target = ".".join(base + ([target] if target else []))
            if not target or not self.add(target, module.name, optional, lazy):
                continue
            imported = self.modules.get(target)
            if imported is not None and imported.is_package:
                # `from package import name`: name may be a submodule.
                for sub in fromlist:
                    if self._locate(f"{target}.{sub}") is not None:
                        self.add(f"{target}.{sub}", module.name, optional, lazy)

    def required(self):
        """Modules whose import cannot fail whenever the runtime runs: imported without an
        ImportError guard by the runtime or its dependencies (anywhere: their lazy imports
        are command paths), or at module level by a required module."""
        follows = {}
        required = []
        for importer, name, optional, lazy in self.edges:
            if optional:
                continue
            if importer == "<root>" or self._is_app_module(importer):
                required.append(name)
            elif not lazy:
                follows.setdefault(importer, []).append(name)
        seen = set()
        while required:
            name = required.pop()
            if name not in seen:
                seen.add(name)
                required += follows.get(name, [])
        return seen


def package_modules(package_dir, package_name):
    """Every module of a package directory (all of them are roots: any may be lazily used)."""
    names = []
    for directory, subdirs, files in os.walk(package_dir):
        subdirs[:] = sorted(d for d in subdirs
                            if os.path.isfile(os.path.join(directory, d, "__init__.py")))
        relative = os.path.relpath(directory, package_dir)
        prefix = package_name if relative == "." else (
            package_name + "." + relative.replace(os.sep, "."))
        for filename in sorted(files):
            if not filename.endswith(".py"):
                continue
            stem = filename[:-3]
            if stem == "__main__":
                continue  # `python -m` glue; the binary calls the entry point itself
            names.append(prefix if stem == "__init__" else f"{prefix}.{stem}")
    return names
