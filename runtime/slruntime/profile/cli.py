"""`slr profile` / `python -m slruntime.profile`: generate a seccomp profile for an image."""

import json
import os
import sys

from slruntime.args import Command, Option, UsageError, help_text, parse

USAGE_EPILOG = """\
Without --entry, every executable ELF file of the rootfs is analysed (and, for a bundle,
process.args[0]); shared libraries no program links are treated as loadable with dlopen().
With --bundle, config.json's mounts are part of the view: bind mounts show their sources
(looked up under --host-root), other mounts hide the rootfs below them.
With --bundle the profile is written to BUNDLE/seccomp.profile.json unless --output says
otherwise; --install then names it in config.json (annotation org.slruntime.seccomp.profile),
so slr applies it when config.json has no linux.seccomp (on top of slr.conf's seccomp-default).
"""


DESCRIPTION = "Generate an OCI linux.seccomp profile from the system calls an image can make.\n"


def _architecture(text):
    if text not in ("x86_64", "aarch64"):
        raise ValueError(text)
    return text


COMMAND = Command((
    Option(("--rootfs",), "rootfs", help="analyse this root filesystem (DIR)"),
    Option(("--bundle",), "bundle", help="analyse this OCI bundle, config.json + rootfs (DIR)"),
    Option(("--entry",), "entry", multiple=True, help="program to analyse (path in the rootfs; repeatable)"),
    Option(("--host-root",), "host_root", default="/",
           help="with --bundle: look up absolute bind-mount sources under DIR "
                "(at build time: the image's root filesystem; default /)"),
    Option(("--arch",), "arch", convert=_architecture,
           help="x86_64 or aarch64: architecture of the profile (default: that of the first program)"),
    Option(("--dynamic",), "dynamic", False,
           help="with --bundle: also run the bundle's process in an slr container, "
                "recording system calls the static analysis missed (seccomp user notification)"),
    Option(("--dynamic-timeout",), "dynamic_timeout", convert=float, default=60.0,
           help="stop the --dynamic run after this many SECONDS (default 60)"),
    Option(("--output",), "output", help="where to write the linux.seccomp object (- for stdout)"),
    Option(("--report",), "report",
           help="write a report: '-' prints a summary, *.json gets the full report, other files the summary"),
    Option(("--install",), "install", False, help="with --bundle: point config.json's annotation at the profile"),
    Option(("--help", "-h"), "help", False, help="show this help"),
))


class CliError(Exception):
    pass


def _bundle_config(bundle):
    from slruntime.profile import image_default

    try:
        return image_default.read_config(bundle)
    except ValueError as err:
        raise CliError(str(err)) from None


def _entries_from_bundle(analysis, config):
    process = config.get("process")
    args = process.get("args") if isinstance(process, dict) else None
    if not isinstance(args, list) or not args:
        return []
    if not isinstance(args[0], str) or not args[0]:
        raise CliError("process.args[0]: must be a non-empty string")
    env_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env = process.get("env")
    for item in env if isinstance(env, list) else []:
        if isinstance(item, str) and item.startswith("PATH="):
            env_path = item[5:]
    host = analysis.rootfs.find_program(args[0], env_path)
    if host is None:
        raise CliError(f"process.args[0] {args[0]!r} is not found in the rootfs")
    return [analysis.rootfs.inside(host)]


def _dedupe(analysis, paths):
    """Entry paths grouped by the file they name (busybox applets are one binary)."""
    groups = {}
    for path in paths:
        host = analysis.rootfs.resolve(path)
        key = os.path.realpath(host) if host else path
        group = groups.setdefault(key, [])
        if path not in group:
            group.append(path)
    return list(groups.values())


def run(values):
    try:
        from slruntime.profile.analysis import Analysis, AnalysisError
    except ImportError as err:
        raise CliError(f"the analyser needs the Python module {err.name}: install slruntime[profile] "
                       "(pip install 'slruntime[profile]')") from None
    from slruntime.profile.generate import Profile, report_text
    from slruntime.profile import image_default
    from slruntime.profile.rootfs import RootfsError, bundle_view

    config = None
    mounts = []
    if values["bundle"]:
        config = _bundle_config(values["bundle"])
        if values["dynamic"] and values["host_root"] != "/":
            raise CliError("--dynamic runs the bundle on this host: it cannot use --host-root")
        try:
            rootfs, mounts = bundle_view(config, values["bundle"], values["host_root"])
        except RootfsError as err:
            raise CliError(str(err)) from None
    else:
        if values["install"] or values["dynamic"] or values["host_root"] != "/":
            raise CliError("--install, --dynamic and --host-root need --bundle")
        rootfs = values["rootfs"]
    if values["install"] and values["output"]:
        bundle = os.path.realpath(values["bundle"])
        if values["output"] == "-" or os.path.commonpath([bundle, os.path.realpath(values["output"])]) != bundle:
            raise CliError("--install needs the --output file inside the bundle")
    try:
        analysis = Analysis(rootfs, values["arch"], mounts)
    except RootfsError as err:
        raise CliError(str(err)) from None

    entries = list(values["entry"])
    libraries = []
    results = []
    try:
        if not entries:
            if config is not None:
                entries = _entries_from_bundle(analysis, config)
            executables, libraries = analysis.rootfs.elf_files()
            entries += executables
            if not entries:
                raise CliError(f"no executable ELF files in {rootfs}")
        groups = _dedupe(analysis, entries)
        linked = set()
        for group in groups:
            linked.update(analysis.analyse_entry(group[0], walk=False).objects)
        # Libraries no program links can only be loaded by dlopen(): they join the link
        # maps of the programs that call it; if none does, they are analysed on their own.
        unlinked = [path for path in libraries if path not in linked]
        for group in groups:
            result = analysis.analyse_entry(group[0], loadable=unlinked)
            result.aliases = group[1:]
            results.append(result)
        if unlinked and not any(result.loadable for result in results):
            results.append(analysis.analyse_libraries(unlinked))
    except (AnalysisError, RootfsError) as err:
        raise CliError(str(err)) from None

    dynamic_result = None
    if values["dynamic"]:
        from slruntime.profile import dynamic

        static = Profile(analysis.arch, results)
        try:
            dynamic_result = dynamic.observe(config, rootfs, analysis.arch, static.allowed, values["dynamic_timeout"])
        except (dynamic.DynamicError, OSError) as err:
            raise CliError(f"--dynamic: {err}") from None
    profile = Profile(analysis.arch, results, dynamic_result)

    document = json.dumps(profile.seccomp(), indent=2) + "\n"
    output = values["output"] or (os.path.join(values["bundle"], image_default.DEFAULT_FILE) if values["bundle"] else "-")
    _write(output, document)
    if values["report"]:
        report = profile.report()
        if values["report"].endswith(".json"):
            _write(values["report"], json.dumps(report, indent=2) + "\n")
        else:
            _write(values["report"], report_text(report))
    if values["install"]:
        relative = os.path.relpath(os.path.abspath(output), os.path.abspath(values["bundle"]))
        try:
            image_default.install(values["bundle"], relative)
        except ValueError as err:
            raise CliError(str(err)) from None
    return 0


def _write(path, text):
    """Write to stdout ("-") or a new file renamed over `path` (see safeio.write_file).
    Names of the image that are not UTF-8 are written back as the bytes they were."""
    from slruntime.profile import safeio

    data = text.encode("utf-8", "surrogateescape")
    if path == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        safeio.write_file(path, data)
    except safeio.RefusedFile as err:
        raise CliError(f"cannot write {err}") from None
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror}") from None


def main(argv=None):
    """Entry point of `slr profile ARGS` (argv without the command name); returns the exit code."""
    try:
        values, _ = parse(COMMAND, sys.argv[1:] if argv is None else argv)
        if values["help"]:
            sys.stdout.write(help_text("slr profile", COMMAND) + "\n" + DESCRIPTION + USAGE_EPILOG)
            return 0
        if bool(values["rootfs"]) == bool(values["bundle"]):
            raise CliError("give one of --rootfs DIR and --bundle DIR")
        return run(values)
    except (CliError, UsageError) as err:
        # One line, whatever it quotes: a name in the image may hold a newline.
        message = str(err).replace("\r", "\\r").replace("\n", "\\n")
        sys.stderr.write(f"slr profile: {message}\n")
        return 1
