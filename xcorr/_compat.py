"""The one place that imports array-api-compat; everything else imports from here.

array-api-compat recognises arrays by looking their classes up in ``sys.modules``,
so nothing here imports a framework.
"""

from __future__ import annotations

from functools import lru_cache

from array_api_compat import (
    array_namespace,
    device,
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_cupy_namespace,
    is_dask_namespace,
    is_jax_namespace,
    is_numpy_namespace,
    is_torch_namespace,
    is_writeable_array,
    to_device,
)

__all__ = [
    "array_namespace",
    "backend_name",
    "device",
    "is_array_api_obj",
    "is_writeable_array",
    "isdtype",
    "to_device",
]


@lru_cache(maxsize=64)
def backend_name(xp) -> str:
    """Short name of the array library behind namespace ``xp``.

    One of "numpy", "array_api_strict", "torch", "jax", "dask", "cupy", or
    the namespace's module name for any other array-API library.
    """
    for name, test in (
        ("numpy", is_numpy_namespace),
        ("torch", is_torch_namespace),
        ("jax", is_jax_namespace),
        ("dask", is_dask_namespace),
        ("cupy", is_cupy_namespace),
        ("array_api_strict", is_array_api_strict_namespace),
    ):
        if test(xp):
            return name
    return xp.__name__


@lru_cache(maxsize=512)
def _isdtype(xp, dtype, kind: str) -> bool:
    return bool(xp.isdtype(dtype, kind))


def isdtype(xp, dtype, kind: str) -> bool:
    """``xp.isdtype(dtype, kind)``, remembered: numpy's takes 2-3 µs, and a
    call of corr2d_vjp asks some thirty times (10% of a 1024², 3x3 backward)."""
    try:
        return _isdtype(xp, dtype, kind)
    except TypeError:  # an unhashable dtype object
        return bool(xp.isdtype(dtype, kind))
