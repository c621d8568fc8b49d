"""Under CI a missing optional dependency fails the run instead of skipping tests.

Each case runs pytest in a subprocess with ``CI=true`` and numba hidden (a
package on PYTHONPATH whose import raises ImportError, as an absent one does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from matrix import require_module

TESTS = Path(__file__).resolve().parent


def hide_numba(tmp_path: Path) -> str:
    shim = tmp_path / "shim" / "numba"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("numba hidden by tests/test_ci.py", name="numba")\n')
    return str(tmp_path / "shim")


def run_pytest(args, *, cwd, ci: bool, pythonpath: list[str]):
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONPATH")}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ci_session_fails_when_numba_is_missing(tmp_path):
    # The session-start check of tests/conftest.py, on a test file that never needs numba.
    shim = hide_numba(tmp_path)
    result = run_pytest([str(TESTS / "test_seed.py")], cwd=TESTS.parent, ci=True, pythonpath=[shim])
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "must be installed" in output and "numba" in output, output


def test_require_module_skips_locally_and_fails_under_ci(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # what an absent package looks like to import
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="numba is not installed"):
        require_module("numba")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="numba must be installed in CI"):
        require_module("numba")
