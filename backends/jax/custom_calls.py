"""numba's kernels as XLA custom calls: when they apply, and XLA's own ops where they must not run.

The handlers themselves are ``backends/_jax_numba.py`` (numba ``cfunc``s of
the XLA FFI ABI, cached with ``_numba_kernels``); ``ops`` calls them. This
module decides whether a call may take them (``numba_applies``) and puts
them into compiled code only where XLA can run them: ``unless_exported``
and ``unless_partitioned`` bind a primitive whose lowering picks the fast
function or its fallback in XLA's own ops.
"""

from __future__ import annotations

import functools
import sys

import jax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir


def unless_exported(fast, fallback, *args):
    """``fast(*args)`` (numba's kernels as XLA custom calls), or ``fallback(*args)`` under ``jax.export``
    or when the computation is partitioned over several devices.

    jax.export refuses custom calls without compatibility guarantees, and
    the handlers are functions of this process anyway. XLA cannot partition
    a custom call: with sharded operands it would gather them onto every
    device first, where its own ops run on each shard. Both functions
    compute the same array; which one goes into the compiled code is
    decided when it is lowered: XLA's own ops when the lowering is for an
    export or for several devices (``_partitioned``), the custom calls
    otherwise. ``jax.vmap`` maps both.
    """
    return _switch().bind(*args, fast=fast, fallback=fallback, exported=True)


def unless_partitioned(fast, fallback, *args):
    """``fast(*args)``, or ``fallback(*args)`` when the computation is partitioned over several devices.

    For paths that XLA's partitioner cannot split along the batch (its FFT
    gathers its whole operand onto every device); ``fallback`` computes the
    same array in ops that it partitions.
    """
    return _switch().bind(*args, fast=fast, fallback=fallback, exported=False)


def _partitioned(ctx) -> bool:
    """Whether a lowering is for one program that XLA's SPMD partitioner splits over several devices.

    ``jax.jit`` with operands or shardings on more than one device lowers
    with the device count in its axis context; inside ``shard_map`` the
    manual mesh axes are per device already, and only the automatic ones of
    more than one device are partitioned. ``pmap`` and one device: False.
    """
    axis_context = getattr(ctx.module_context, "axis_context", None)
    devices = getattr(axis_context, "num_devices", None)
    if devices is not None:
        return devices > 1
    mesh = getattr(axis_context, "mesh", None)
    if mesh is None:
        return False
    manual = getattr(axis_context, "manual_axes", frozenset())
    return any(size > 1 for name, size in mesh.shape.items() if name not in manual)


@functools.cache
def _switch():
    """The primitive behind ``unless_exported`` and ``unless_partitioned``: abstract evaluation,
    lowering and batching rules."""
    primitive = Primitive("xcorr_numba_unless_exported")

    def abstract(*avals, fast, fallback, exported):
        out = jax.eval_shape(fallback, *(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals))
        return jax.core.ShapedArray(out.shape, out.dtype)

    def lowering(ctx, *args, fast, fallback, exported):
        parameters = getattr(ctx.module_context, "lowering_parameters", None)
        exporting = exported and bool(getattr(parameters, "for_export", False))
        chosen = fallback if exporting or _partitioned(ctx) else fast
        return mlir.lower_fun(chosen, multiple_results=False)(ctx, *args)

    def batch(args, dims, *, fast, fallback, exported):
        axes = tuple(dims)  # None: not mapped
        fast, fallback = jax.vmap(fast, in_axes=axes), jax.vmap(fallback, in_axes=axes)
        return primitive.bind(*args, fast=fast, fallback=fallback, exported=exported), 0

    def jvp(primals, tangents, *, fast, fallback, exported):
        # The tangent of XLA's ops (numba's kernels have no derivative rules):
        # what a second derivative of a kernel gradient differentiates.
        tangents = tuple(ad.instantiate_zeros(t) for t in tangents)
        out = primitive.bind(*primals, fast=fast, fallback=fallback, exported=exported)
        return out, jax.jvp(fallback, tuple(primals), tangents)[1]

    primitive.def_impl(lambda *args, fast, fallback, exported: jax.jit(fast)(*args))
    primitive.def_abstract_eval(abstract)
    mlir.register_lowering(primitive, lowering)
    batching.primitive_batchers[primitive] = batch
    ad.primitive_jvps[primitive] = jvp
    return primitive


def numba_applies(tuning, x, k, dtype, outputs: int) -> bool:
    """Whether a call takes numba's kernels as XLA custom calls (``backends/_jax_numba.py``)."""
    dtypes = (jax.numpy.float32, jax.numpy.float64)
    return (
        tuning.numba
        and k.ndim == 2
        and x.dtype in dtypes
        and dtype == x.dtype
        and outputs >= tuning.numba_min_outputs
        and jax.default_backend() == "cpu"
        and numba_custom_calls()
    )


@functools.cache
def numba_custom_calls() -> bool:
    """numba installed, a platform whose call frames ``_jax_numba`` reads (jax.ffi, 64-bit,
    little-endian, POSIX), and the FFI structs the handlers were tested on."""
    try:
        from .. import _numba
    except ImportError:  # the optional numba path removed
        return False
    if not (
        _numba.installed()
        and hasattr(jax, "ffi")
        and sys.maxsize > 2**32
        and sys.byteorder == "little"
        and sys.platform != "win32"  # the handlers call malloc, free and sched_yield
    ):
        return False
    try:
        from .. import _jax_numba
    except ImportError:  # the optional custom calls removed
        return False
    return _jax_numba.layout_supported()
