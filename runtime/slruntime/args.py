"""The one argument parser of every `slr` command line (slr's own commands, `slr pool`,
`slr fgac`, `slr profile`), following runc's conventions: `--flag VALUE`, `--flag=VALUE`,
`-f`, booleans as `--flag` or `--flag=false`, `--` ends the options; a usage error is one
line and exit code 1.

A table of Option and Command records rather than argparse: importing argparse alone
costs more start-up time than the rest of a container start (test_lean_imports).
"""

from slruntime.errors import SlrError


class UsageError(SlrError):
    pass


class Option:
    __slots__ = ("names", "dest", "takes_value", "multiple", "convert", "help", "default")

    def __init__(self, names, dest, takes_value=True, multiple=False, convert=str, help="", default=None):
        self.names = names
        self.dest = dest
        self.takes_value = takes_value
        self.multiple = multiple
        self.convert = convert  # raises ValueError for a value it refuses
        self.help = help
        self.default = default  # of an option that takes a value and is not given


class Command:
    """A command's options and positionals. Positional names starting with "?" are
    optional; extra: further positionals are the container process's arguments, and
    options stop at the first positional (`slr exec ID sh -c ...`)."""

    __slots__ = ("options", "positionals", "extra")

    def __init__(self, options=(), positionals=(), extra=False):
        self.options = options
        self.positionals = positionals
        self.extra = extra


def integer(text):
    return int(text, 10)


def positive_integer(text):
    value = int(text, 10)
    if value < 1:
        raise ValueError(text)
    return value


def lookup(options, name):
    """The option `name` (`--x`, `-x`, or `-long` for `--long`, as Go's flag package) names."""
    for option in options:
        if name in option.names or (name.startswith("-") and not name.startswith("--") and "-" + name in option.names):
            return option
    return None


def parse(command, argv):
    """Parse `argv` against `command`; returns (values by dest, positionals)."""
    options = command.options
    values = {o.dest: ([] if o.multiple else (o.default if o.takes_value else False)) for o in options}
    positionals = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            positionals.extend(argv[i + 1:])
            break
        if arg.startswith("-") and arg != "-" and not (positionals and command.extra):
            name, has_inline, inline = arg.partition("=")
            option = lookup(options, name)
            if option is None:
                raise UsageError(f"flag provided but not defined: {name}")
            if option.takes_value:
                if has_inline:
                    raw = inline
                else:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: {name}")
                    raw = argv[i]
                try:
                    value = option.convert(raw)
                except ValueError:
                    raise UsageError(f"invalid value {raw!r} for flag {name}") from None
                if option.multiple:
                    values[option.dest].append(value)
                else:
                    values[option.dest] = value
            else:
                values[option.dest] = inline.lower() not in ("false", "0") if has_inline else True
        else:
            positionals.append(arg)
        i += 1
    required = [n for n in command.positionals if not n.startswith("?")]
    if len(positionals) < len(required):
        raise UsageError(f"missing argument: {required[len(positionals)].replace('id', 'container id')}")
    if not command.extra and len(positionals) > len(command.positionals):
        raise UsageError(f"unexpected argument: {positionals[len(command.positionals)]}")
    return values, positionals


def help_text(prog, command):
    args = " ".join(f"[{n[1:]}]" if n.startswith("?") else f"<{n}>" for n in command.positionals)
    lines = [f"usage: {prog} [options] {args}{' [args...]' if command.extra else ''}".rstrip(), ""]
    for option in command.options:
        flag = ", ".join(option.names) + (" VALUE" if option.takes_value else "")
        lines.append(f"  {flag:32} {option.help}".rstrip())
    return "\n".join(lines) + "\n"
