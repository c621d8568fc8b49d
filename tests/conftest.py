from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from matrix import BACKENDS

# float64 tests need JAX's 64-bit mode; without it float64 silently becomes float32.
try:
    import jax
except ImportError:  # the matrix reports the missing backend
    pass
else:
    jax.config.update("jax_enable_x64", True)

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
