"""`slr profile` / `python -m slruntime.profile`: generate a seccomp profile for an image."""

import argparse
import json
import os
import sys

USAGE_EPILOG = """\
Without --entry, every executable ELF file of the rootfs is analysed (and, for a bundle,
process.args[0]); shared libraries no program links are treated as loadable with dlopen().
With --bundle, config.json's mounts are part of the view: bind mounts show their sources
(looked up under --host-root), other mounts hide the rootfs below them.
With --bundle the profile is written to BUNDLE/seccomp.profile.json unless --output says
otherwise; --install then names it in config.json (annotation org.slruntime.seccomp.profile),
so slr applies it when config.json has no linux.seccomp (on top of slr.conf's seccomp-default).
"""


def _parser():
    parser = argparse.ArgumentParser(
        prog="slr profile", epilog=USAGE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Generate an OCI linux.seccomp profile from the system calls an image can make.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--rootfs", metavar="DIR", help="analyse this root filesystem")
    source.add_argument("--bundle", metavar="DIR", help="analyse this OCI bundle (config.json + rootfs)")
    parser.add_argument("--entry", metavar="PATH", action="append", default=[],
                        help="program to analyse (path in the rootfs; repeatable)")
    parser.add_argument("--host-root", metavar="DIR", default="/",
                        help="with --bundle: look up absolute bind-mount sources under DIR "
                             "(at build time: the image's root filesystem; default /)")
    parser.add_argument("--arch", choices=("x86_64", "aarch64"),
                        help="architecture of the profile (default: that of the first program)")
    parser.add_argument("--dynamic", action="store_true",
                        help="with --bundle: also run the bundle's process in an slr container, "
                             "recording system calls the static analysis missed (seccomp user notification)")
    parser.add_argument("--dynamic-timeout", metavar="SECONDS", type=float, default=60,
                        help="stop the --dynamic run after this long (default 60)")
    parser.add_argument("--output", metavar="FILE",
                        help="where to write the linux.seccomp object (- for stdout)")
    parser.add_argument("--report", metavar="FILE",
                        help="write a report: '-' prints a summary, *.json gets the full report, other files the summary")
    parser.add_argument("--install", action="store_true",
                        help="with --bundle: point config.json's annotation at the profile")
    return parser


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


def run(args):
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
    if args.bundle:
        config = _bundle_config(args.bundle)
        if args.dynamic and args.host_root != "/":
            raise CliError("--dynamic runs the bundle on this host: it cannot use --host-root")
        try:
            rootfs, mounts = bundle_view(config, args.bundle, args.host_root)
        except RootfsError as err:
            raise CliError(str(err)) from None
    else:
        if args.install or args.dynamic or args.host_root != "/":
            raise CliError("--install, --dynamic and --host-root need --bundle")
        rootfs = args.rootfs
    if args.install and args.output:
        bundle = os.path.realpath(args.bundle)
        if args.output == "-" or os.path.commonpath([bundle, os.path.realpath(args.output)]) != bundle:
            raise CliError("--install needs the --output file inside the bundle")
    try:
        analysis = Analysis(rootfs, args.arch, mounts)
    except RootfsError as err:
        raise CliError(str(err)) from None

    entries = list(args.entry)
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
    if args.dynamic:
        from slruntime.profile import dynamic

        static = Profile(analysis.arch, results)
        try:
            dynamic_result = dynamic.observe(config, rootfs, analysis.arch, static.allowed, args.dynamic_timeout)
        except (dynamic.DynamicError, OSError) as err:
            raise CliError(f"--dynamic: {err}") from None
    profile = Profile(analysis.arch, results, dynamic_result)

    document = json.dumps(profile.seccomp(), indent=2) + "\n"
    output = args.output or (os.path.join(args.bundle, image_default.DEFAULT_FILE) if args.bundle else "-")
    _write(output, document)
    if args.report:
        report = profile.report()
        if args.report.endswith(".json"):
            _write(args.report, json.dumps(report, indent=2) + "\n")
        else:
            _write(args.report, report_text(report))
    if args.install:
        relative = os.path.relpath(os.path.abspath(output), os.path.abspath(args.bundle))
        try:
            image_default.install(args.bundle, relative)
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
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except CliError as err:
        # One line, whatever it quotes: a name in the image may hold a newline.
        message = str(err).replace("\r", "\\r").replace("\n", "\\n")
        sys.stderr.write(f"slr profile: {message}\n")
        return 1
