"""The one argument parser (slruntime/args.py), root-free, and the import graph of the
command lines around it: no circle between cli.py and pool/cli.py, no argparse."""

import subprocess
import sys

import pytest

from slruntime.args import Command, Option, UsageError, integer, parse

EXEC_LIKE = Command((Option(("--env", "-e"), "env", multiple=True), Option(("--tty", "-t"), "tty", False),
                     Option(("--size",), "size", convert=integer, default=2)), ("id",), extra=True)


def test_runc_flag_forms():
    values, positionals = parse(EXEC_LIKE, ["-e", "A=1", "--env=B=2", "-tty=false", "--size", "7", "c1", "sh", "-c", "x"])
    assert values == {"env": ["A=1", "B=2"], "tty": False, "size": 7}
    assert positionals == ["c1", "sh", "-c", "x"]  # options stop at the first positional
    values, positionals = parse(EXEC_LIKE, ["--", "-c1"])
    assert (values["size"], positionals) == (2, ["-c1"])


@pytest.mark.parametrize("argv,message", [
    (["--bogus", "c1"], "flag provided but not defined: --bogus"),
    (["--size"], "flag needs an argument: --size"),
    (["--size", "x", "c1"], "invalid value 'x' for flag --size"),
    ([], "missing argument: container id"),
])
def test_usage_errors_are_one_line(argv, message):
    with pytest.raises(UsageError) as error:
        parse(EXEC_LIKE, argv)
    assert str(error.value) == message


def test_extra_positionals_refused_unless_the_command_takes_them():
    with pytest.raises(UsageError) as error:
        parse(Command((), ("id",)), ["c1", "c2"])
    assert str(error.value) == "unexpected argument: c2"


@pytest.mark.parametrize("module,call", [
    ("slruntime.pool.cli", "main('/nonexistent-slr-root', ['list'])"),
    ("slruntime.fgac.cli", "main(['--help'])"),
    ("slruntime.cli", "main(['--root', '/nonexistent-slr-root', 'list'])"),
])
def test_command_lines_use_no_other_command_line_nor_argparse(module, call):
    """pool/cli.py imported its parser from cli.py, which imports pool/cli.py: a circle."""
    code = (f"import sys; from {module} import main; {call}; "
            "others = {'slruntime.cli', 'slruntime.pool.cli', 'slruntime.fgac.cli', 'slruntime.profile.cli'} - "
            f"{{'{module}'}}; loaded = (others | {{'argparse'}}) & set(sys.modules); assert not loaded, loaded")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
