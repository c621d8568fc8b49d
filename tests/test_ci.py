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

    (torch,) = [r for r in map(Requirement, pyproject()["project"]["optional-dependencies"]["torch"]) if r.name == "torch"]
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


def constraint_pins(name: str) -> dict:
    """The ``name==version`` lines of ``.ci/NAME``, by canonical package name."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / ".ci" / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f".ci/{name}: {line!r} is not a pin"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_oldest_constraints_are_the_floors_of_pyproject():
    # .ci/run's "oldest" run installs the README's extras with these pins: each floor of the
    # core, `all` (through the extras it names) and `test` must be pinned at exactly that floor.
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    (everything,) = extras["all"]
    named = Requirement(everything).extras
    requirements = [*project["dependencies"], *extras["test"]] + [r for e in sorted(named) for r in extras[e]]
    pins = constraint_pins("oldest.txt")
    floors = {}
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        lows = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert lows, f"{line}: every requirement declares its oldest version (>=)"
        floors[name] = Version(lows[0])
        assert name in pins, f".ci/oldest.txt does not pin {name} (pyproject: {line})"
        assert Version(pins[name]) == floors[name], f".ci/oldest.txt pins {name}=={pins[name]}, pyproject says {line}"
    assert set(pins) - set(floors) <= {"jaxlib", "distributed"}, set(pins) - set(floors)


def test_ci_script_runs_the_readme_commands_on_newest_and_oldest_versions():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'versions newest ""' in script
    # both runs gate: a failing run fails .ci/run (set -e), no "|| ..." lets it pass
    lines = [line.strip() for line in script.splitlines()]
    assert 'versions newest ""' in lines and 'versions oldest "$PWD/.ci/oldest.txt"' in lines
    assert 'step "tests-$name" "$TEST_CMD"' in script and 'step "demo-$name" "$DEMO_CMD"' in script
    # the newest run has no constraint at all: an empty constraints file overrides one that a
    # machine's pip configuration sets (unsetting PIP_CONSTRAINT would leave that one in force)
    assert 'export PIP_CONSTRAINT="${constraints:-/dev/null}"' in script
    assert "unset PIP_CONSTRAINT" not in script
    # the release artefacts: built, checked by twine, and the wheel installed and run outside the checkout
    assert "python -m build" in script and "twine check --strict" in script
    assert ".ci/wheel_smoke.py" in script and (ROOT / ".ci" / "wheel_smoke.py").is_file()


def test_ci_script_holds_one_virtual_environment_on_disk_at_a_time():
    """The newest run's CUDA torch is several GB: a CI machine ran out of disk with the pinned and
    wheel environments and pip's download cache still on it."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.strip() for line in script.splitlines()]
    assert "export PIP_NO_CACHE_DIR=1" in lines
    wheel = next(i for i, line in enumerate(lines) if line.startswith("step wheel "))
    assert lines[wheel + 1].startswith("rm -rf .venv .venv-wheel"), lines[wheel + 1]
    tests = lines.index('step "tests-$name" "$TEST_CMD"')
    assert lines[tests + 1 : tests + 3] == ["deactivate", 'rm -rf ".venv-$name"'], lines[tests : tests + 3]
    # the compilation caches (jax's, torch inductor's) are shared by the runs, then removed
    assert lines[-1] == "rm -rf .jax-cache .torchinductor", lines[-1]


def extras_table(path: Path) -> dict[str, str]:
    """Each install table row's extra (a backticked name in a first or third column) and what it brings."""
    import re

    rows = {}
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        for name_cell, brings in zip(cells[::2], cells[1::2]):
            for name in re.findall(r"`([a-z]+)`", name_cell):
                rows[name] = brings
    return rows


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_install_tables_list_the_extras_of_pyproject(page):
    import re

    from packaging.requirements import Requirement

    extras = pyproject()["project"]["optional-dependencies"]
    table = extras_table(Path(page))
    assert set(table) == set(extras), f"{page}: table {sorted(table)}, pyproject {sorted(extras)}"
    (everything,) = extras["all"]
    named = set(re.findall(r"[a-z]+", table["all"]))
    assert named == Requirement(everything).extras, f"{page}: `all` is {sorted(Requirement(everything).extras)}"
    if page.startswith("docs/"):  # the getting-started table spells out each requirement
        for name, requirements in extras.items():
            if name in ("all", "test", "docs"):
                continue
            shown = set(re.findall(r"`([^`]+)`", table[name]))
            assert shown == set(requirements), f"{page}: `{name}` shows {sorted(shown)}, pyproject {requirements}"
