"""The compact slr's static front (slr_front.c with the C `pool run` client,
pool_client.c) compiles without a warning under -Wall -Wextra -Werror, natively and with
the aarch64 cross compiler the cross build uses. Its behaviour is tested against the
Python client in runtime/tests/test_pool_protocol.py."""

import os
import shutil
import subprocess

import pytest

COMPACT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "compact")
STRICT = ["-std=c11", "-Os", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"]


@pytest.mark.parametrize("compiler", ["cc", "aarch64-linux-gnu-gcc"])
@pytest.mark.parametrize("source", ["pool_client.c", "slr_front.c", "terminal_relay.c"])
def test_front_compiles_without_warnings(compiler, source, tmp_path):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed (tools/deps/compact.apt)")
    # The header build_compact.py generates, with a path that needs escaping.
    (tmp_path / "slr_front_path.h").write_text('#define SLR_FROZEN_PATH "/usr/lib\\"exec/slr"\n')
    result = subprocess.run([compiler, *STRICT, "-I", str(tmp_path), os.path.join(COMPACT, source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
