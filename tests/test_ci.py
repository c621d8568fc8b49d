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


# -- packaging: torch is an open range for users, the local CPU wheel in CI ------------------

ROOT = TESTS.parent


def pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_torch_extra_is_an_open_range_and_ci_pins_the_cpu_wheel_inside_it():
    from packaging.requirements import Requirement
    from packaging.version import Version

    (torch,) = [Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["torch"]]
    assert torch.name == "torch"
    assert all(spec.operator == ">=" for spec in torch.specifier), f"{torch}: an open range, no upper pin"
    pins = [
        Requirement(line)
        for line in (ROOT / ".ci" / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    (pin,) = [r for r in pins if r.name == "torch"]
    (spec,) = pin.specifier
    assert spec.operator == "==" and Version(spec.version).local == "cpu", f"{pin}: CI takes the CPU wheel only"
    assert torch.specifier.contains(Version(spec.version)), f"{pin} is outside the extra's range {torch}"


def test_ci_script_uses_the_constraints_and_builds_the_docs_strictly():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'CONSTRAINTS="$PWD/.ci/constraints.txt"' in script
    assert 'export PIP_CONSTRAINT="$CONSTRAINTS"' in script
    assert "python -m sphinx -W --keep-going -b html docs docs/_build/html" in script
    assert "-e '.[docs]'" in script
    # the docs extra has every package the Sphinx configuration loads
    docs = {r.split(">")[0].split("=")[0].split("<")[0].strip() for r in pyproject()["project"]["optional-dependencies"]["docs"]}
    conf = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    for package, module in [
        ("sphinx", "sphinx.ext.autodoc"),
        ("myst-parser", "myst_parser"),
        ("sphinx-gallery", "sphinx_gallery"),
        ("sphinx-copybutton", "sphinx_copybutton"),
        ("pydata-sphinx-theme", "pydata_sphinx_theme"),
        ("matplotlib", "MPLBACKEND"),
    ]:
        assert module in conf and package in docs, (package, module)


def test_license_and_changelog_ship_with_the_metadata():
    project = pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog and f"## [{project['version']}] - " in changelog
    assert set(project["urls"]) >= {"Homepage", "Documentation", "Repository", "Changelog"}
    assert any(c.startswith("Programming Language :: Python :: 3.") for c in project["classifiers"])
