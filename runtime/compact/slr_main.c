/*
 * main() of the compact slr binary: an isolated CPython that imports only frozen modules
 * and calls the entry point named by the generated frozen_modules.c.
 *
 * Not Py_FrozenMain: that one reads PYTHON* environment variables, imports site and runs
 * a frozen __main__ module. Here the configuration is fixed at build time:
 *   - isolated (no environment variables, no user site), no `site` import,
 *   - UTF-8 mode regardless of the locale (embedded targets often have only C/POSIX),
 *   - sys.path empty and the path-based finder removed: every import is a builtin or a
 *     frozen module, so nothing on disk can shadow or complement the binary,
 *   - never writes bytecode.
 * This binary is the Python CLI, for every command line it is given. The `slr` users
 * run is the static front (slr_front.c), which serves `slr pool run` in C and executes
 * this binary for everything else; run directly, this one answers every command itself
 * (`pool run` through the Python client), as the venv's slr does.
 * Exit skips the interpreter's teardown (module and object deallocation, ~3 ms) after doing
 * what a program can observe: joining non-daemon threads, running atexit callbacks and
 * flushing sys.stdout/sys.stderr. The kernel frees the rest.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defined by the generated frozen_modules.c. */
extern const struct _frozen slr_frozen_modules[];
extern const char slr_entry_module[];
extern const char slr_entry_function[];

static void
exit_on_status(PyStatus status)
{
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
}

static void
configure(int argc, char **argv)
{
    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;
    exit_on_status(Py_PreInitialize(&preconfig));

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.write_bytecode = 0;
    config.use_frozen_modules = 1;
    config.pathconfig_warnings = 0;
    config.module_search_paths_set = 1; /* an empty sys.path */
    config.install_signal_handlers = 1;
#ifdef SLR_IMPORT_TIME
    config.import_time = 1; /* build_compact.py --import-time: a profiling build */
#endif

    /* sys.executable is this binary (lets the runtime re-execute itself), taken from the
     * kernel rather than searched in PATH. Setting `home` to its directory keeps getpath
     * from probing the file system for a prefix, a venv or a ._pth file: the binary has
     * no stdlib directory to find. */
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    PyStatus status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (!PyStatus_Exception(status) && length > 0) {
        self[length] = '\0';
        status = PyConfig_SetBytesString(&config, &config.executable, self);
        if (!PyStatus_Exception(status)) {
            *strrchr(self, '/') = '\0';
            status = PyConfig_SetBytesString(&config, &config.home, self[0] ? self : "/");
        }
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    exit_on_status(status);
}

/* Leaves only the builtin and frozen importers in sys.meta_path and marks sys.frozen. */
static int
seal_imports(void)
{
    PyObject *meta_path = PySys_GetObject("meta_path"); /* borrowed */
    if (meta_path == NULL || !PyList_Check(meta_path)) {
        PyErr_SetString(PyExc_RuntimeError, "sys.meta_path is not a list");
        return -1;
    }
    for (Py_ssize_t i = PyList_GET_SIZE(meta_path) - 1; i >= 0; i--) {
        PyObject *name = PyObject_GetAttrString(PyList_GET_ITEM(meta_path, i), "__name__");
        if (name == NULL) {
            return -1;
        }
        int keep = PyUnicode_Check(name)
                   && (PyUnicode_CompareWithASCIIString(name, "BuiltinImporter") == 0
                       || PyUnicode_CompareWithASCIIString(name, "FrozenImporter") == 0);
        Py_DECREF(name);
        if (!keep && PySequence_DelItem(meta_path, i) < 0) {
            return -1;
        }
    }
    /* Without a stdlib directory, frozen modules get no fake __file__ pointing to disk. */
    if (PySys_SetObject("_stdlib_dir", Py_None) < 0) {
        return -1;
    }
    return PySys_SetObject("frozen", Py_True);
}

/* The exit status sys.exit(value) would give; prints a non-integer value like it does. */
static int
exit_status_of(PyObject *value)
{
    if (value == NULL || value == Py_None) {
        return 0;
    }
    if (PyLong_Check(value)) {
        int overflow;
        long status = PyLong_AsLongAndOverflow(value, &overflow);
        if (PyErr_Occurred() || overflow) {
            PyErr_Clear();
            return 1;
        }
        return (int)status;
    }
    PyObject *text = PyObject_Str(value);
    if (text != NULL) {
        PyObject *stderr_file = PySys_GetObject("stderr");
        if (stderr_file != NULL && stderr_file != Py_None
                && PyFile_WriteObject(text, stderr_file, Py_PRINT_RAW) == 0) {
            PyFile_WriteString("\n", stderr_file);
        }
        Py_DECREF(text);
    }
    PyErr_Clear();
    return 1;
}

/* Runs the entry point; returns the process exit status. */
static int
run_entry_point(void)
{
    if (seal_imports() < 0) {
        PyErr_Print();
        return 1;
    }
    PyObject *result = NULL;
    PyObject *module = PyImport_ImportModule(slr_entry_module);
    if (module != NULL) {
        PyObject *function = PyObject_GetAttrString(module, slr_entry_function);
        Py_DECREF(module);
        if (function != NULL) {
            result = PyObject_CallNoArgs(function);
            Py_DECREF(function);
        }
    }
    if (result != NULL) {
        int status = exit_status_of(result);
        Py_DECREF(result);
        return status;
    }
    if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *exit = PyErr_GetRaisedException();
#else
        PyObject *type, *exit, *traceback;
        PyErr_Fetch(&type, &exit, &traceback);
        PyErr_NormalizeException(&type, &exit, &traceback);
        Py_XDECREF(type);
        Py_XDECREF(traceback);
#endif
        PyObject *code = exit != NULL ? PyObject_GetAttrString(exit, "code") : NULL;
        int status = exit_status_of(code);
        Py_XDECREF(code);
        Py_XDECREF(exit);
        return status;
    }
    PyErr_Print();
    return 1;
}

static void
call_method_ignoring_errors(PyObject *object, const char *method)
{
    if (object == NULL || object == Py_None) {
        return;
    }
    PyObject *result = PyObject_CallMethod(object, method, NULL);
    if (result == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(result);
}

/* What Py_FinalizeEx does that a program can observe, then the process ends. */
static _Noreturn void
finish(int status)
{
    PyObject *threading_name = PyUnicode_FromString("threading");
    PyObject *threading = threading_name != NULL ? PyImport_GetModule(threading_name) : NULL;
    Py_XDECREF(threading_name);
    if (threading != NULL) {
        call_method_ignoring_errors(threading, "_shutdown");
        Py_DECREF(threading);
    }
    PyErr_Clear();
    PyObject *atexit_module = PyImport_ImportModule("atexit");
    call_method_ignoring_errors(atexit_module, "_run_exitfuncs");
    Py_XDECREF(atexit_module);
    PyErr_Clear();
    PyObject *stdout_file = PySys_GetObject("stdout");
    PyObject *flushed = stdout_file != NULL && stdout_file != Py_None
                        ? PyObject_CallMethod(stdout_file, "flush", NULL) : Py_NewRef(Py_None);
    if (flushed == NULL) {
        PyErr_Clear();
        if (status == 0) {
            status = 120; /* as CPython: output could not be written */
        }
    }
    Py_XDECREF(flushed);
    call_method_ignoring_errors(PySys_GetObject("stderr"), "flush");
    fflush(NULL);
    _exit(status);
}

int
main(int argc, char **argv)
{
    PyImport_FrozenModules = slr_frozen_modules;
    configure(argc, argv);
    finish(run_entry_point());
}
