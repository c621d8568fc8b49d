from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from matrix import BACKENDS, CI_MODULES


def pytest_configure(config):
    """Under CI, every optional dependency of the CPU matrix must import, or the run fails here.

    The planted-bug check (``tests/mutants``) makes this check once for all its pytest runs and
    sets ``XCORR_CI_MODULES_CHECKED``; a missing module still fails each test that needs it
    (``require_module``)."""
    if not os.environ.get("CI") or os.environ.get("XCORR_CI_MODULES_CHECKED"):
        return
    missing = []
    for name in CI_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as err:
            missing.append(f"{name} ({err})")
    if missing:
        raise pytest.UsageError(
            "CI is set, so every optional dependency of the CPU test matrix must be installed "
            "(pip install -e '.[all,test]'); missing: " + ", ".join(missing)
        )


# float64 tests need JAX's 64-bit mode; without it float64 silently becomes float32.
try:
    import jax
except ImportError:  # the matrix reports the missing backend
    pass
else:
    jax.config.update("jax_enable_x64", True)

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the property tests' modules report it (and CI fails above)
    pass
else:
    settings.register_profile(
        "xcorr",
        deadline=None,
        max_examples=int(os.environ.get("XCORR_HYPOTHESIS_EXAMPLES", "40")),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=bool(os.environ.get("CI")),
    )
    settings.load_profile("xcorr")


@pytest.fixture(params=BACKENDS, ids=str)
def backend(request):
    """Every test that takes ``backend`` runs once per array library."""
    request.param.require()
    return request.param


@pytest.fixture(scope="module")
def xcorr_api():
    """docs/_ext/xcorr_api.py, which renders the API page (it imports nothing of Sphinx: the tests run
    before the docs extra is installed)."""
    ext = str(Path(__file__).resolve().parents[1] / "docs" / "_ext")
    sys.path.insert(0, ext)
    try:
        import xcorr_api

        yield xcorr_api
    finally:
        sys.path.remove(ext)
