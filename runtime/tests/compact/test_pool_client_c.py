"""The compact binary's C `pool run` client (pool_client.c) compiles without a warning
under -Wall -Wextra -Werror, natively and with the aarch64 cross compiler the cross
build uses. Its behaviour is tested against the Python client in
runtime/tests/test_pool_protocol.py."""

import os
import shutil
import subprocess

import pytest

COMPACT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "compact")
STRICT = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"]


@pytest.mark.parametrize("compiler", ["cc", "aarch64-linux-gnu-gcc"])
def test_pool_client_compiles_without_warnings(compiler):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed (tools/deps/compact.apt)")
    result = subprocess.run([compiler, *STRICT, os.path.join(COMPACT, "pool_client.c")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
