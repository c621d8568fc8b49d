"""Correlation as a jax primitive with JVP, transpose and batching rules.

The rules are bound to the adapter that builds the primitive: the transpose
of each linear use is that adapter's VJP, and its forward kernels take that
adapter's tuning.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax._src import core as _core
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from ...toolkit import adapter_vjp, plan, result_dtype, tangent_options
from . import ops


def differentiable_correlate(adapter, xp, x, k, options, geometry):
    """Correlation through the primitive (``primitive``), or straight to the kernel for integers.

    Every jax transformation applies: ``jax.grad``/``vjp`` (the transpose of
    the tangent map is the core VJP, ``toolkit.vjp``, instead of jax's
    autodiff through the unrolled shift-and-add), ``jax.jvp``/``jacfwd``
    (the tangent is two correlations), any nesting of them (Hessians),
    ``jit`` and ``vmap``. Integer operands are cast to the (floating) result
    dtype first, so jax sees their gradient stop at the cast; integer-only
    calls are not differentiable and go straight to the kernel.
    """
    if not differentiable(xp, x, k):
        return ops.forward(adapter.tuning, x, k, options, geometry)
    return differentiable_kernel(adapter, options, geometry)(x, k)


def differentiable(xp, x, k) -> bool:
    """Whether the operands' result dtype is floating (real or complex): the primitive's domain."""
    return xp.isdtype(result_dtype(xp, x.dtype, k.dtype), ("real floating", "complex floating"))


@functools.cache
def differentiable_kernel(adapter, options, geometry):
    """The casts and the primitive under one ``jax.jit`` per static configuration.

    An eager call then costs one compiled dispatch; under a user's
    ``jax.jit``/``grad``/``vmap`` it is inlined like the forward kernels.
    """

    def run(x, k):
        dtype = result_dtype(jnp, x.dtype, k.dtype)
        x, k = _match_varying(jnp.astype(x, dtype), jnp.astype(k, dtype))
        return primitive(adapter).bind(x, k, options=options, geometry=geometry)

    return jax.jit(run)


def _match_varying(*args):
    """The operands, varying over the same manual mesh axes inside ``jax.shard_map``.

    Under ``check_vma`` jax types each value with the manual axes it varies
    over; its own operations cast an operand that varies over fewer axes up
    (``pvary``, whose transpose is the ``psum`` that makes a replicated
    kernel's gradient replicated again). The primitive's operands get the
    same cast, through jax's own helper where this jax has it.
    """
    # The helper is standard_insert_pvary in earlier jax releases.
    insert = getattr(_core, "auto_insert_reshard", None) or getattr(_core, "standard_insert_pvary", None)
    return tuple(insert(*args)) if insert is not None else args


def _varying(aval) -> frozenset:
    """The manual mesh axes an abstract value varies over (``shard_map``'s ``check_vma``)."""
    mat = getattr(aval, "mat", None)
    return frozenset(getattr(mat, "varying", ())) if mat is not None else frozenset(getattr(aval, "vma", ()))


@functools.cache
def primitive(adapter):
    """The ``xcorr_correlate`` primitive of ``adapter`` (bound by ``differentiable_kernel``).

    Why a primitive rather than ``jax.custom_vjp`` or ``jax.custom_jvp``: a
    ``custom_vjp`` function has no forward mode, and the tangent rule of a
    ``custom_jvp`` must be built from operations jax can transpose, which
    the fast forward kernels (numba's XLA custom calls, a ``fori_loop``
    shift-and-add) are not; reverse mode would then go through jax's
    autodiff of the kernels. A primitive states the algebra once: its JVP
    binds the primitive twice (``corr(dx, k) + corr(x, dk)``), and the
    transpose of each linear use is one half of the core VJP, itself built
    from the primitive, so every order of derivative keeps the fast
    kernels, and reverse mode computes what the ``custom_vjp`` computed.
    """
    correlate = Primitive("xcorr_correlate")

    def run(x, k, *, options, geometry):
        return ops.forward(adapter.tuning, x, k, options, geometry)

    def abstract(x, k, *, options, geometry):
        if not (_varying(x) or _varying(k)):
            return jax.core.ShapedArray(geometry.out_shape, x.dtype)
        # Inside shard_map: the result varies over the operands' axes (the same for both, _match_varying).
        base = x if x.ndim == len(geometry.out_shape) else k
        return base.update(shape=geometry.out_shape, dtype=x.dtype, weak_type=False)

    def jvp(primals, tangents, *, options, geometry):
        x, k = primals
        dx, dk = tangents
        y = correlate.bind(x, k, options=options, geometry=geometry)
        terms = []
        if type(dx) is not ad.Zero:
            terms.append(correlate.bind(*_match_varying(dx, k), options=tangent_options(options), geometry=geometry))
        if type(dk) is not ad.Zero:
            terms.append(correlate.bind(*_match_varying(x, dk), options=options, geometry=geometry))
        if not terms:
            return y, jnp.zeros_like(y)
        return y, terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def transpose(g, x, k, *, options, geometry):
        need_x, need_k = ad.is_undefined_primal(x), ad.is_undefined_primal(k)
        if need_x and need_k:
            msg = "xcorr_correlate is bilinear, not linear, in (x, k) together: it has no transpose"
            raise ValueError(msg)
        if type(g) is ad.Zero:
            return [ad.Zero(x.aval) if need_x else None, ad.Zero(k.aval) if need_k else None]
        # The unknown operand's shape and dtype are all the VJP reads of it.
        x = _Aval(x.aval) if need_x else x
        k = _Aval(k.aval) if need_k else k
        # jax may hand over a NumPy cotangent (check_grads does).
        gx, gk = adapter_vjp(adapter, jnp, x, k, jnp.asarray(g), options, geometry, need_x, need_k)
        return [gx, gk]

    def batch(args, dims, *, options, geometry):
        # corr2d batches natively: the mapped dimension goes in front of the
        # broadcast batch dimensions, and the geometry is planned anew.
        x, k = args
        depth = len(geometry.batch)
        x, k = (_leading(a, d, depth) for a, d in zip((x, k), dims))
        planned = plan(tuple(x.shape), tuple(k.shape), options)
        return correlate.bind(x, k, options=options, geometry=planned), 0

    correlate.def_impl(run)
    correlate.def_abstract_eval(abstract)
    mlir.register_lowering(correlate, mlir.lower_fun(run, multiple_results=False))
    ad.primitive_jvps[correlate] = jvp
    ad.primitive_transposes[correlate] = transpose
    batching.primitive_batchers[correlate] = batch
    return correlate


class _Aval:
    """The shape and dtype of an operand the transpose does not know (all the VJP reads of it)."""

    __slots__ = ("dtype", "ndim", "shape")

    def __init__(self, aval):
        self.shape = tuple(aval.shape)
        self.dtype = aval.dtype
        self.ndim = len(self.shape)


def _leading(a, dim, depth: int):
    """Move the mapped ``dim`` of ``a`` to the front, with ``depth`` batch dimensions after it."""
    if dim is None:  # batching.not_mapped
        return a
    a = jnp.moveaxis(a, dim, 0)
    missing = depth - (a.ndim - 3)
    return jnp.reshape(a, (a.shape[0], *(1,) * missing, *a.shape[1:]))
