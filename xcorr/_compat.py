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
    "device",
    "is_array_api_obj",
    "is_array_api_strict_namespace",
    "is_cupy_namespace",
    "is_dask_namespace",
    "is_jax_namespace",
    "is_numpy_namespace",
    "is_torch_namespace",
    "is_writeable_array",
    "isdtype",
    "to_device",
]


@lru_cache(maxsize=512)
def _isdtype(xp, dtype, kind: str | tuple[str, ...]) -> bool:
    return bool(xp.isdtype(dtype, kind))


def isdtype(xp, dtype, kind: str | tuple[str, ...]) -> bool:
    """``xp.isdtype(dtype, kind)``, remembered: numpy's is slow for what it
    does, and a call of corr2d_vjp asks some thirty times."""
    try:
        return _isdtype(xp, dtype, kind)
    except TypeError:  # an unhashable dtype object
        return bool(xp.isdtype(dtype, kind))
