"""The backend matrix: every array library xcorr is tested on.

Each ``Backend`` knows how to turn a NumPy array into one of its arrays (on
its device), how to bring a result back, and which namespace and device a
result must have. CPU backends must be installed wherever ``CI`` is set;
GPU backends are skipped, with the reason shown, where no GPU is present.
"""

from __future__ import annotations

import importlib
import itertools
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import numpy as np
import pytest

DTYPE_NAMES = ("int32", "int64", "float32", "float64", "complex64", "complex128")

# Every optional dependency of the CPU test matrix: under CI each must be
# installed (tests/conftest.py checks them when the session starts).
CI_MODULES = (
    "numpy",
    "scipy",
    "numba",
    "hypothesis",
    "array_api_strict",
    "array_api_extra",
    "torch",
    "jax",
    "dask.array",
    "distributed",
    "flax.serialization",
    "equinox",
    "threadpoolctl",
    "mypy.api",
    # keras is not imported here: importing it fixes the process's Keras backend (TensorFlow
    # by default); tests/test_keras.py requires it (failing under CI) and runs it in subprocesses.
)


def require_module(name: str):
    """``import name``: skip the test (or module) where it is missing, but fail under CI.

    Use instead of ``pytest.importorskip``, which lets a CI run pass with
    whole parts of the suite skipped.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        if os.environ.get("CI"):
            pytest.fail(f"{name} must be installed in CI: {err}", pytrace=False)
        pytest.skip(f"{name} is not installed: {err}", allow_module_level=True)


@dataclass(frozen=True)
class Backend:
    name: str
    module: str
    gpu: bool = False

    def __str__(self) -> str:
        return self.name

    # -- availability ---------------------------------------------------
    def require(self) -> None:
        """Skip (or, for CPU backends in CI, fail) when this backend is missing."""
        reason = self.missing()
        if reason is None:
            return
        if not self.gpu and os.environ.get("CI"):
            pytest.fail(f"backend {self.name} must be installed in CI: {reason}")
        pytest.skip(f"backend {self.name} unavailable: {reason}")

    def missing(self) -> str | None:
        try:
            lib = importlib.import_module(self.module)
        except ImportError as err:
            return str(err)
        if self.name == "torch_cuda" and not lib.cuda.is_available():
            return "no CUDA device"
        if self.name == "jax_gpu":
            try:
                lib.devices("gpu")
            except RuntimeError:
                return "no GPU device for jax"
        if self.name == "cupy":
            try:
                if lib.cuda.runtime.getDeviceCount() < 1:
                    return "no CUDA device"
            except Exception as err:  # noqa: BLE001 (cupy raises its own CUDA errors)
                return f"no CUDA device ({err})"
        return None

    # -- what xcorr declares about it -----------------------------------
    @property
    def library(self) -> str:
        """xcorr's registry name of this backend's library (``Conv2D(backend=...)``): torch_cuda's is "torch"."""
        return self.module.partition(".")[0]

    @property
    def adapter(self):
        """The adapter xcorr serves this backend's arrays with (``xcorr.adapter_for``'s, found by the
        library's registry name, so that no array or device is needed): tests read its declared
        capabilities (``native``, ``eager``, ``autodiff``, ``devices``) instead of naming backends.
        An ImportError where the library is not installed."""
        from xcorr._registry import adapter_named

        return adapter_named(self.library)

    @property
    def traced(self) -> bool:
        """Whether arrays are traced and compiled (not eager, and differentiated by the library itself:
        jax), so that every new configuration of a call costs a compilation."""
        return not self.adapter.eager and self.adapter.autodiff

    # -- conversion -----------------------------------------------------
    @property
    def xp(self):
        """The namespace results must have (as array_namespace reports it)."""
        import array_api_compat

        return array_api_compat.array_namespace(self.asarray(np.zeros(1)))

    def dtype(self, name: str):
        return getattr(self.xp, name)

    def asarray(self, a, dtype: str | None = None):
        a = np.asarray(a)
        if dtype is not None:
            a = a.astype(dtype)
        if self.name == "numpy":
            return a
        if self.name == "array_api_strict":
            import array_api_strict

            return array_api_strict.asarray(a)
        if self.name in ("torch", "torch_cuda"):
            import torch

            return torch.asarray(a.copy(), device="cuda" if self.gpu else "cpu")
        if self.name in ("jax", "jax_gpu"):
            import jax

            return jax.device_put(a, jax.devices("gpu" if self.gpu else "cpu")[0])
        if self.name == "dask":
            import dask.array as da

            # Several chunks per axis, so chunk boundaries are exercised.
            chunks = tuple(max(1, -(-n // 2)) for n in a.shape)
            return da.from_array(a, chunks=chunks)
        if self.name == "cupy":
            import cupy

            return cupy.asarray(a)
        raise AssertionError(self.name)

    def to_numpy(self, y) -> np.ndarray:
        if self.name == "dask":
            y = y.compute()
        if self.name in ("torch", "torch_cuda"):
            return y.detach().cpu().numpy()
        if self.name == "cupy":
            return y.get()
        return np.asarray(y)


BACKENDS = (
    Backend("numpy", "numpy"),
    Backend("array_api_strict", "array_api_strict"),
    Backend("torch", "torch"),
    Backend("jax", "jax"),
    Backend("dask", "dask.array"),
    Backend("torch_cuda", "torch", gpu=True),
    Backend("jax_gpu", "jax", gpu=True),
    Backend("cupy", "cupy", gpu=True),
)
CPU_BACKENDS = tuple(b for b in BACKENDS if not b.gpu)


def backends_where(test) -> tuple[Backend, ...]:
    """The backends for which ``test(backend)`` holds (it reads ``backend.adapter``'s declared
    capabilities), for parametrisations. A backend whose library is not installed is kept, so that its
    tests report it (a skip, or a failure under CI) rather than vanish from the matrix."""
    kept = []
    for b in BACKENDS:
        try:
            holds = test(b)
        except ImportError:
            holds = True
        if holds:
            kept.append(b)
    return tuple(kept)


THINNED = ("dask",)
"""Backends on which ``backend_grid`` runs a diagonal of a test's option grid, not its whole product."""


def _value_id(value) -> str:
    return value if isinstance(value, str) else repr(value)


def backend_grid(*axes, cases: int | None = None, thinned=THINNED) -> list:
    """Params for ``parametrize(("backend", *names), backend_grid(*axes), indirect=["backend"])``.

    Every backend runs every combination of the ``axes`` (sequences of values), except the ``thinned``
    ones (dask: lazy, so that every call pays for building and computing a task graph), which run a
    diagonal of the product: combination ``j`` takes value ``j % len(axis)`` of each axis, for ``cases``
    combinations (by default as many as the longest axis has values), so that every value of every
    axis still runs on them. A backend whose library is missing is kept, to be reported by the fixture.
    """
    axes = [list(axis) for axis in axes]
    count = max(len(axis) for axis in axes) if cases is None else cases
    diagonal = {tuple(j % len(axis) for axis in axes) for j in range(count)}
    params = []
    for index in itertools.product(*(range(len(axis)) for axis in axes)):
        values = [axis[i] for axis, i in zip(axes, index)]
        ident = "-".join(_value_id(v) for v in values)
        for b in BACKENDS:
            if b.name not in thinned or index in diagonal:
                params.append(pytest.param(b, *values, id=f"{ident}-{b.name}"))
    return params


def tolerance(dtype: str) -> dict[str, float]:
    """rtol/atol for comparing against the float64 reference."""
    if dtype.startswith("int"):
        return {"rtol": 0, "atol": 0}
    if dtype in ("float32", "complex64"):
        return {"rtol": 2e-5, "atol": 2e-5}
    return {"rtol": 1e-12, "atol": 1e-12}


TOL = {"rtol": 1e-10, "atol": 1e-10}
"""rtol/atol of ``check``: float64 results against a float64 oracle (scipy, torch, lax or a loop here)."""

NP_PAD = {"fill": "constant", "wrap": "wrap", "symm": "symmetric", "reflect": "reflect", "edge": "edge"}
"""np.pad's mode for each of xcorr's boundaries, for the loop references of the tests."""


def check(backend: Backend, y, expected, like=None) -> None:
    """Library (a lazy dask array on dask), device (that of ``like``, where given), float64 dtype, shape and values (TOL) of a result."""
    import array_api_compat

    assert array_api_compat.array_namespace(y) is backend.xp
    if backend.name == "dask":
        import dask.array as da

        assert isinstance(y, da.Array)
    if like is not None:
        assert array_api_compat.device(y) == array_api_compat.device(like)
    assert y.dtype == backend.dtype("float64"), y.dtype
    assert tuple(y.shape) == expected.shape, (tuple(y.shape), expected.shape)
    np.testing.assert_allclose(backend.to_numpy(y), expected, **TOL)


def layout(a, last: bool):
    """``a`` (channels on axis 1) moved to channels_last where ``last``, else ``a`` itself."""
    return np.moveaxis(a, 1, -1) if last else a


def triple(value) -> tuple:
    """One per spatial axis of a 3-D call: a sequence as a tuple, a scalar three times."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * 3


def assert_result(backend: Backend, y, expected, dtype: str, *, like=None) -> None:
    """Check library, device, dtype, shape and values of a result.

    ``expected`` is a float64 (or complex128) NumPy array; ``like`` is an
    input array whose device the result must share.
    """
    import array_api_compat

    xp = array_api_compat.array_namespace(y)
    assert xp is backend.xp, f"result namespace {xp.__name__}, expected {backend.xp.__name__}"
    if backend.name == "dask":
        import dask.array as da

        assert isinstance(y, da.Array), f"dask result is {type(y)}, not a lazy dask array"
    if like is not None:
        assert array_api_compat.device(y) == array_api_compat.device(like)
    assert y.dtype == backend.dtype(dtype), f"dtype {y.dtype}, expected {dtype}"
    assert tuple(y.shape) == expected.shape, f"shape {tuple(y.shape)}, expected {expected.shape}"
    np.testing.assert_allclose(backend.to_numpy(y), expected, **tolerance(dtype))


def run_python(script: str, *, timeout: float = 240, env: dict | None = None, cwd=None) -> str:
    """Run ``script`` (dedented) in a fresh interpreter: its stdout, or a test failure with its output.

    For state that must be fresh (a handler not yet registered, a pool not yet made, an install);
    the timeout fails the test as a hang rather than hanging the run.
    """
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"timed out after {timeout} s (a hang):\n{err.stdout}\n{err.stderr}")
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout
