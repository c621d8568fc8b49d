"""JAX adapter: custom VJP and fast forward kernels.

Imported lazily by the adapter registry (``xcorr._adapter``) the first time a jax array reaches
xcorr; ``import xcorr`` never imports jax.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass, replace

import jax

from .. import _fft, _generic, _layer, _vjp
from .._adapter import Adapter, Costs, Tuning
from .._jvp import tangent_options
from .._options import result_dtype

try:
    from . import _hugepages
except ImportError:  # the optional huge-page advice removed
    _hugepages = None


def correlate(xp, x, k, options, geometry):
    """Validated correlation of jax arrays (``JaxAdapter.correlate``)."""
    return differentiable_correlate(xp, x, k, options, geometry)


# --- autodiff ------------------------------------------------------------


def differentiable_correlate(xp, x, k, options, geometry):
    """Correlation as a jax primitive with JVP, transpose and batching rules.

    Every jax transformation applies: ``jax.grad``/``vjp`` (the transpose of
    the tangent map is the core VJP, ``xcorr._vjp``, instead of jax's
    autodiff through the unrolled shift-and-add), ``jax.jvp``/``jacfwd``
    (the tangent is two correlations), any nesting of them (Hessians),
    ``jit`` and ``vmap``. Integer operands are cast to the (floating) result
    dtype first, so jax sees their gradient stop at the cast; integer-only
    calls are not differentiable and go straight to the kernel.
    """
    dtype = result_dtype(xp, x.dtype, k.dtype)
    if not xp.isdtype(dtype, ("real floating", "complex floating")):
        return forward(xp, x, k, options, geometry)
    return _differentiable_kernel(options, geometry)(x, k)


@functools.cache
def _differentiable_kernel(options, geometry):
    """The casts and the primitive under one ``jax.jit`` per static configuration.

    An eager call then costs one compiled dispatch; under a user's
    ``jax.jit``/``grad``/``vmap`` it is inlined like the forward kernels.
    """

    def run(x, k):
        jnp = jax.numpy
        dtype = result_dtype(jnp, x.dtype, k.dtype)
        return correlate_p(jnp.astype(x, dtype), jnp.astype(k, dtype), options, geometry)

    return jax.jit(run)


def correlate_p(x, k, options, geometry):
    """``forward(x, k)`` of operands of one floating dtype, as the differentiable primitive."""
    x, k = _match_varying(x, k)
    return _primitive().bind(x, k, options=options, geometry=geometry)


def _match_varying(*args):
    """The operands, varying over the same manual mesh axes inside ``jax.shard_map``.

    Under ``check_vma`` jax types each value with the manual axes it varies
    over; its own operations cast an operand that varies over fewer axes up
    (``pvary``, whose transpose is the ``psum`` that makes a replicated
    kernel's gradient replicated again). The primitive's operands get the
    same cast, through jax's own helper where this jax has it.
    """
    from jax._src import core

    # The helper is standard_insert_pvary in earlier jax releases.
    insert = getattr(core, "auto_insert_reshard", None) or getattr(core, "standard_insert_pvary", None)
    return tuple(insert(*args)) if insert is not None else args


def _varying(aval) -> frozenset:
    """The manual mesh axes an abstract value varies over (``shard_map``'s ``check_vma``)."""
    mat = getattr(aval, "mat", None)
    return frozenset(getattr(mat, "varying", ())) if mat is not None else frozenset(getattr(aval, "vma", ()))


@functools.cache
def _primitive():
    """The ``xcorr_correlate`` primitive (bound by ``correlate_p``).

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
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching, mlir

    primitive = Primitive("xcorr_correlate")

    def run(x, k, *, options, geometry):
        return forward(jax.numpy, x, k, options, geometry)

    def abstract(x, k, *, options, geometry):
        if not (_varying(x) or _varying(k)):
            return jax.core.ShapedArray(geometry.out_shape, x.dtype)
        # Inside shard_map: the result varies over the operands' axes (the same for both, _match_varying).
        base = x if x.ndim == len(geometry.out_shape) else k
        return base.update(shape=geometry.out_shape, dtype=x.dtype, weak_type=False)

    def jvp(primals, tangents, *, options, geometry):
        x, k = primals
        dx, dk = tangents
        y = primitive.bind(x, k, options=options, geometry=geometry)
        terms = []
        if type(dx) is not ad.Zero:
            terms.append(primitive.bind(*_match_varying(dx, k), options=tangent_options(options), geometry=geometry))
        if type(dk) is not ad.Zero:
            terms.append(primitive.bind(*_match_varying(x, dk), options=options, geometry=geometry))
        if not terms:
            return y, jax.numpy.zeros_like(y)
        return y, terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def transpose(g, x, k, *, options, geometry):
        need_x, need_k = ad.is_undefined_primal(x), ad.is_undefined_primal(k)
        if need_x and need_k:
            msg = "xcorr_correlate is bilinear, not linear, in (x, k) together: it has no transpose"
            raise ValueError(msg)
        if type(g) is ad.Zero:
            return [ad.Zero(x.aval) if need_x else None, ad.Zero(k.aval) if need_k else None]
        jnp = jax.numpy
        # The unknown operand's shape and dtype are all the VJP reads of it.
        x = _Aval(x.aval) if need_x else x
        k = _Aval(k.aval) if need_k else k
        # jax may hand over a NumPy cotangent (check_grads does).
        gx, gk = _vjp.vjp(jnp, x, k, jnp.asarray(g), options, geometry, need_x=need_x, need_k=need_k)
        return [gx, gk]

    def batch(args, dims, *, options, geometry):
        # corr2d batches natively: the mapped dimension goes in front of the
        # broadcast batch dimensions, and the geometry is planned anew.
        from .._options import plan

        x, k = args
        depth = len(geometry.batch)
        x, k = (_leading(a, d, depth) for a, d in zip((x, k), dims))
        planned = plan(tuple(x.shape), tuple(k.shape), options)
        return primitive.bind(x, k, options=options, geometry=planned), 0

    primitive.def_impl(lambda x, k, *, options, geometry: _kernel(options, geometry)(x, k))
    primitive.def_abstract_eval(abstract)
    mlir.register_lowering(primitive, mlir.lower_fun(run, multiple_results=False))
    ad.primitive_jvps[primitive] = jvp
    ad.primitive_transposes[primitive] = transpose
    batching.primitive_batchers[primitive] = batch
    return primitive


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
    a = jax.numpy.moveaxis(a, dim, 0)
    missing = depth - (a.ndim - 3)
    return jax.numpy.reshape(a, (a.shape[0], *(1,) * missing, *a.shape[1:]))

def kernel_gradient(xp, x, k, g, options, geometry, method):
    """``_vjp`` hook: the direct kernel gradient as numba's one-pass kernel, an XLA custom call.

    Applies on the CPU (jax's default backend) with numba installed, to a
    2-D kernel, float32/float64 operands and at least
    ``JaxTuning.numba_min_outputs`` outputs, where it is several times
    faster than the native convolution (``backends/_jax_numba.py``; the
    README's jax backward table). A "fill" boundary is read virtually;
    other boundaries are extended first. NotImplemented elsewhere.
    """
    if method != "direct" or not _numba_applies(x, k, g.dtype, math.prod(geometry.out_shape)):
        return NotImplemented
    k_shape = tuple(k.shape)
    fast = functools.partial(_numba_kernel_gradient, options=options, geometry=geometry, k_shape=k_shape)
    fallback = functools.partial(_xla_kernel_gradient, options=options, geometry=geometry, k_shape=k_shape)
    return _unless_exported(fast, fallback, x, g)


def _numba_kernel_gradient(x, g, *, options, geometry, k_shape):
    """The kernel gradient as numba's one-pass kernel in an XLA custom call."""
    from . import _jax_numba

    xp = _jnp()
    planes, r0, c0 = _numba_source(xp, x, options, geometry, virtual_fill=True)
    gb = xp.reshape(g, (-1, *g.shape[-2:]))
    consts = xp.asarray([options.fillvalue, 0], dtype=x.dtype)
    params = (r0, c0, geometry.rows.step, geometry.cols.step, geometry.rows.dilation, geometry.cols.dilation)
    threaded_work = ADAPTER.tuning.numba_threaded_work
    return _jax_numba.kernel_gradient(planes, gb, consts, k_shape, params, threaded_work=threaded_work)


def _xla_kernel_gradient(x, g, *, options, geometry, k_shape):
    """The same kernel gradient in XLA's own ops: one convolution of the extended input with ``g``.

    ``gk[a, b] = sum over planes of g . window(a, b) of extend(x)``: the
    planes are the input channels, ``g`` the kernel, the tap spacing its
    strides and the output stride its dilation.
    """
    from jax import lax

    xp = _jnp()
    rows, cols = geometry.rows, geometry.cols
    xe = _extend(xp, x, geometry, options)
    batch = geometry.batch
    planes = math.prod(batch)
    H, W = xe.shape[-2:]
    lhs = xp.reshape(xp.broadcast_to(xe, (*batch, H, W)), (1, planes, H, W))
    rhs = xp.reshape(g, (1, planes, rows.count, cols.count))
    y = lax.conv_general_dilated(
        lhs,
        rhs,
        (rows.dilation, cols.dilation),
        "VALID",
        rhs_dilation=(rows.step, cols.step),
        precision=lax.Precision.HIGHEST,
    )
    return y[0, 0, : k_shape[0], : k_shape[1]]


def _unless_exported(fast, fallback, *args):
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


def _unless_partitioned(fast, fallback, *args):
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
    """The primitive behind ``_unless_exported`` and ``_unless_partitioned``: abstract evaluation,
    lowering and batching rules."""
    import jax.core
    from jax.extend.core import Primitive
    from jax.interpreters import ad, batching, mlir

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


def _numba_applies(x, k, dtype, outputs: int) -> bool:
    """Whether a call takes numba's kernels as XLA custom calls (``backends/_jax_numba.py``)."""
    dtypes = (jax.numpy.float32, jax.numpy.float64)
    return (
        ADAPTER.tuning.numba
        and k.ndim == 2
        and x.dtype in dtypes
        and dtype == x.dtype
        and outputs >= ADAPTER.tuning.numba_min_outputs
        and jax.default_backend() == "cpu"
        and _numba_custom_calls()
    )


@functools.cache
def _numba_custom_calls() -> bool:
    """numba installed, a platform whose call frames ``_jax_numba`` reads (jax.ffi, 64-bit,
    little-endian, POSIX), and the FFI structs the handlers were tested on."""
    try:
        from . import _numba
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
        from . import _jax_numba
    except ImportError:  # the optional custom calls removed
        return False
    return _jax_numba.layout_supported()


def _numba_source(xp, x, options, geometry, *, virtual_fill: bool):
    """``_numba.source`` of jax arrays: what numba's kernels read, with this adapter's extension."""
    from . import _numba

    return _numba.source(xp, x, options, geometry, virtual_fill=virtual_fill, extend=_extend)




def kernel_gradient_sum(xp, xe, g, swapped, k_shape):
    """The native kernel gradient of a batch with one 2-D kernel, batch sum included.

    ``sum over planes of corr(extend(x)[p], g[p])`` is one convolution with
    the planes as input channels, against the grouped convolution (one
    output per plane, summed afterwards) that the broadcast correlation
    takes. Read by ``xcorr._vjp``; NotImplemented where it does not apply.
    """
    from jax import lax

    if len(k_shape) != 2 or g.ndim < 3 or not xp.isdtype(g.dtype, "real floating"):
        return NotImplemented
    batch = tuple(g.shape[:-2])
    planes = math.prod(batch)
    H, W = xe.shape[-2:]
    h, w = g.shape[-2:]
    lhs = xp.reshape(xp.broadcast_to(xe, (*batch, H, W)), (1, planes, H, W))
    rhs = xp.reshape(g, (1, planes, h, w))
    y = lax.conv_general_dilated(lhs, rhs, swapped.stride, "VALID", rhs_dilation=swapped.dilation)
    return y[0, 0]


# --- fast forward kernels --------------------------------------------------




def _extend(xp, x, geometry, options):
    """``_fft.extend``, with a fill extension as one ``lax.pad``.

    The zero blocks and ``concat`` of the generic extension are materialised
    (a "full" correlation, the input gradient, ran about twice as long).
    XLA does not fuse this one pad into the nine slices of an unrolled 3x3
    shift-and-add either: that path pads per tap (``_tap_windows``).
    """
    rows, cols = geometry.rows, geometry.cols
    if geometry.inside or options.boundary != "fill":
        return _fft.extend(xp, x, geometry, options)
    from jax import lax

    config = [(0, 0, 0)] * (x.ndim - 2) + [
        (-rows.lo, rows.hi - rows.size + 1, 0),
        (-cols.lo, cols.hi - cols.size + 1, 0),
    ]
    return lax.pad(x, xp.asarray(options.fillvalue, dtype=x.dtype), config)


def _tap_windows(xp, x, geometry, options):
    """``window(a, b)``: what kernel tap ``(a, b)`` reads for every output.

    A fill extension of a kernel of up to ``JaxTuning.pad_per_tap`` taps gives each
    tap its own ``lax.pad`` of ``x`` (negative widths crop): XLA fuses nine
    pads into the shift-and-add, but not one pad that nine slices read (a
    separate pass, about twice the time of a "full" 3x3 correlation, the
    input gradient). Beyond that the fused pads cost more than the pass, so
    larger kernels and other extensions extend once and slice.
    """
    rows, cols = geometry.rows, geometry.cols
    if geometry.inside or options.boundary != "fill" or rows.taps * cols.taps > ADAPTER.tuning.pad_per_tap:
        xe = _extend(xp, x, geometry, options)
        return lambda a, b: xe[..., _generic.window(rows, a), _generic.window(cols, b)]
    from jax import lax

    fill = xp.asarray(options.fillvalue, dtype=x.dtype)
    lead = [(0, 0, 0)] * (x.ndim - 2)

    def width(plan, tap):
        # x positions first .. first + length - 1, fill outside [0, size).
        first = plan.lo + tap * plan.dilation
        length = (plan.count - 1) * plan.step + 1
        return (-first, first + length - plan.size, 0)

    def window(a, b):
        term = lax.pad(x, fill, [*lead, width(rows, a), width(cols, b)])
        return term[..., :: rows.step, :: cols.step]

    return window


def forward(xp, x, k, options, geometry):
    """Fastest forward computation for jax arrays, traceable under jax.jit.

    Each (options, geometry) gets one ``jax.jit``-compiled kernel, cached;
    inside a user's ``jax.jit`` it is simply inlined. ``options.method`` is
    already resolved by ``xcorr._methods``:

    - "direct": shift-and-add that XLA fuses into one pass over the input.
      Up to ``JaxTuning.unroll_taps`` taps it is fully unrolled; beyond that XLA's
      compile time and run time fall off a cliff, so a ``lax.fori_loop`` runs
      over the kernel rows with the columns unrolled.
    - "fft": real FFTs through ``jax.numpy.fft`` (``xcorr._fft``).
    - "native": ``lax.conv_general_dilated`` (floating and complex dtypes).
    """
    return _kernel(options, geometry)(x, k)




@functools.cache
def _kernel(options, geometry):
    import jax

    if options.method == "fft":
        fft = functools.partial(_fft.correlate, _jnp(), options=options, geometry=geometry)
        native = functools.partial(_native, options=options, geometry=geometry)
        return jax.jit(functools.partial(_unless_partitioned, fft, native))
    if options.method == "native":
        return jax.jit(functools.partial(_native, options=options, geometry=geometry))
    return jax.jit(functools.partial(_direct, options=options, geometry=geometry))


def _jnp():
    import jax.numpy as jnp

    return jnp


def _direct(x, k, *, options, geometry):
    xp = _jnp()
    x, k = _generic.prepare(xp, x, k, options)
    if _numba_forward(x, k, options, geometry):
        fast = functools.partial(_numba_prepared, options=options, geometry=geometry)
        fallback = functools.partial(_xla_direct, options=options, geometry=geometry)
        return _unless_exported(fast, fallback, x, k)
    return _xla_direct(x, k, options=options, geometry=geometry)


def _numba_prepared(x, k, *, options, geometry):
    return _numba_correlate(_jnp(), x, k, options, geometry)


def _xla_direct(x, k, *, options, geometry):
    """The direct correlation of prepared operands in XLA's own ops (see ``forward``)."""
    from jax import lax

    xp = _jnp()
    compacted = _generic.compact(xp, x, geometry, options)
    if compacted is not None:
        # A dilation wider than the output: the taps' windows end to end, every window inside.
        x, geometry = compacted
    rows, cols = geometry.rows, geometry.cols
    if rows.taps * cols.taps <= ADAPTER.tuning.unroll_taps or rows.taps == 1:
        # _generic.correlate's unrolled shift-and-add, on the extended input.
        window = _tap_windows(xp, x, geometry, options)
        total = None
        for a in range(rows.taps):
            for b in range(cols.taps):
                term = window(a, b) * k[..., a : a + 1, b : b + 1]
                total = term if total is None else total + term
        if tuple(total.shape) != geometry.out_shape:
            total = xp.broadcast_to(total, geometry.out_shape)
        return total
    xe = _extend(xp, x, geometry, options)
    length = (rows.count - 1) * rows.step + 1
    col_windows = [_generic.window(cols, b) for b in range(cols.taps)]

    def row(a, acc):
        band = lax.dynamic_slice_in_dim(xe, a * rows.dilation, length, axis=xe.ndim - 2)
        band = band[..., :: rows.step, :]
        weights = lax.dynamic_index_in_dim(k, a, axis=k.ndim - 2, keepdims=False)  # (..., w)
        for b, window in enumerate(col_windows):
            acc = acc + band[..., window] * weights[..., b][..., None, None]
        return acc

    acc = xp.zeros(geometry.out_shape, dtype=x.dtype)
    return lax.fori_loop(0, rows.taps, row, acc)


def _numba_forward(x, k, options, geometry) -> bool:
    """Whether the direct correlation takes numba's kernel (an XLA custom call).

    Where windows leave ``x`` into a fill, XLA pays for the fill (a pad per
    tap or a padded copy) where numba's kernel reads rows of the fill value
    and computes the edge columns apart. And an output of at least
    ``JaxTuning.numba_fresh_output_bytes`` is a fresh mapping every call,
    which XLA faults in page by page, where the handler asks for huge pages
    first (``_hugepages``); smaller outputs inside ``x`` stay with XLA's
    fused shift-and-add, which is faster there. Beyond
    ``JaxTuning.unroll_taps`` taps XLA's loop is as fast. (The README's jax
    tables have the measurements.)
    """
    rows, cols = geometry.rows, geometry.cols
    outputs = math.prod(geometry.out_shape)
    if rows.taps * cols.taps > ADAPTER.tuning.unroll_taps or not _numba_applies(x, k, k.dtype, outputs):
        return False
    if not geometry.inside:
        # Rows of the fill are read virtually; a column stride needs the extension XLA builds too.
        return options.boundary == "fill" and cols.step == 1
    return _hugepages is not None and _hugepages.enabled() and outputs * x.dtype.itemsize >= ADAPTER.tuning.numba_fresh_output_bytes


def _numba_correlate(xp, x, k, options, geometry):
    """The direct correlation as numba's kernel in an XLA custom call (a fill read virtually)."""
    from . import _jax_numba

    rows, cols = geometry.rows, geometry.cols
    planes, r0, c0 = _numba_source(xp, x, options, geometry, virtual_fill=True)
    consts = xp.asarray([options.fillvalue, 0], dtype=x.dtype)
    params = (r0, c0, rows.step, cols.step, rows.dilation, cols.dilation)
    out_shape = (planes.shape[0], rows.count, cols.count)
    y = _jax_numba.correlate(planes, k, consts, out_shape, params, threaded_work=ADAPTER.tuning.numba_threaded_work)
    return xp.reshape(y, geometry.out_shape)


def _native(x, k, *, options, geometry):
    from jax import lax

    xp = _jnp()
    x, k = _generic.prepare(xp, x, k, options)
    if not (xp.isdtype(x.dtype, "real floating") or xp.isdtype(x.dtype, "complex floating")):
        return _direct(x, k, options=replace(options, convolve=False), geometry=geometry)
    compacted = _generic.compact(xp, x, geometry, options)  # a dilation wider than the output
    xe, geometry = compacted if compacted is not None else (_extend(xp, x, geometry, options), geometry)
    rows, cols = geometry.rows, geometry.cols
    stride, dilation = (rows.step, cols.step), (rows.dilation, cols.dilation)
    H, W = xe.shape[-2:]
    h, w = k.shape[-2:]
    if k.ndim == 2:
        lhs = xp.reshape(xe, (-1, 1, H, W))
        y = lax.conv_general_dilated(lhs, xp.reshape(k, (1, 1, h, w)), stride, "VALID", rhs_dilation=dilation)
        y = xp.reshape(y, (*xe.shape[:-2], *y.shape[-2:]))
    else:
        # One kernel per plane: a grouped convolution over the broadcast batch.
        batch = geometry.batch
        planes = math.prod(batch)
        lhs = xp.reshape(xp.broadcast_to(xe, (*batch, H, W)), (1, planes, H, W))
        rhs = xp.reshape(xp.broadcast_to(k, (*batch, h, w)), (planes, 1, h, w))
        y = lax.conv_general_dilated(lhs, rhs, stride, "VALID", rhs_dilation=dilation, feature_group_count=planes)
        y = xp.reshape(y, (*batch, *y.shape[-2:]))
    if tuple(y.shape) != geometry.out_shape:
        y = xp.broadcast_to(y, geometry.out_shape)
    return y


# --- layers and multi-channel correlation (issue 3) -------------------------


def correlate_multi(xp, x, w, options, geometry, groups, precision=None, preferred_element_type=None):
    """``corr2d_multi``: ``lax.conv_general_dilated``, the extension handed to jax.

    A zero fill is the convolution's ``padding``; another fill value one
    ``lax.pad``; wrap, symm and reflect within one period and edge at any
    width ``jnp.pad`` ("wrap", "symmetric", "reflect", "edge"); wider ones
    the generic extension (slices that XLA fuses).
    """
    dtype = result_dtype(xp, x.dtype, w.dtype)
    if not xp.isdtype(dtype, "real floating"):
        return NotImplemented
    x = xp.astype(x, dtype, copy=False)
    w = xp.astype(w, dtype, copy=False)
    rows, cols = geometry.rows, geometry.cols
    padding = ((-rows.lo, rows.hi - rows.size + 1), (-cols.lo, cols.hi - cols.size + 1))
    if geometry.inside or (options.boundary == "fill" and options.fillvalue == 0):
        xe = x  # negative padding crops what no window reads
    elif options.boundary == "fill":
        xe, padding = _extend(xp, x, geometry, options), ((0, 0), (0, 0))
    elif options.boundary == "edge" or all(
        0 <= n <= size - (options.boundary == "reflect")
        for (lo, hi), size in zip(padding, (rows.size, cols.size))
        for n in (lo, max(hi, 0))
    ):
        widths = [(0, 0)] * (x.ndim - 2) + [(lo, max(hi, 0)) for lo, hi in padding]
        mode = {"wrap": "wrap", "symm": "symmetric", "reflect": "reflect", "edge": "edge"}[options.boundary]
        xe, padding = xp.pad(x, widths, mode=mode), ((0, 0), (0, 0))
    else:
        xe, padding = _generic.extend(xp, x, geometry, options), ((0, 0), (0, 0))
    lhs = xe if xe.ndim == 4 else xe[None, ...]
    y = jax.lax.conv_general_dilated(
        lhs,
        w,
        window_strides=options.stride,
        padding=padding,
        rhs_dilation=options.dilation,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        feature_group_count=groups,
        precision=jax.lax.Precision.HIGHEST if precision is None else precision,
        preferred_element_type=preferred_element_type,
    )
    if y.shape[-2:] != (rows.count, cols.count):  # a pad past the last window, unread
        y = y[..., : rows.count, : cols.count]
    return y if xe.ndim == 4 else y[0]


def correlate_multi_channels_last(xp, x, w, options, geometry, groups):
    """``corr2d_multi`` of an ``(N, H, W, C)`` input: ``lax.conv_general_dilated`` in ``NHWC``.

    Zero fills and calls that read no extension (the convolution's padding);
    NotImplemented for the others (the core's permuted views, then
    ``correlate_multi``).
    """
    dtype = result_dtype(xp, x.dtype, w.dtype)
    if not xp.isdtype(dtype, "real floating"):
        return NotImplemented
    if not (geometry.inside or (options.boundary == "fill" and options.fillvalue == 0)):
        return NotImplemented
    x = xp.astype(x, dtype, copy=False)
    w = xp.astype(w, dtype, copy=False)
    rows, cols = geometry.rows, geometry.cols
    padding = ((-rows.lo, rows.hi - rows.size + 1), (-cols.lo, cols.hi - cols.size + 1))
    lhs = x if x.ndim == 4 else x[None, ...]
    y = jax.lax.conv_general_dilated(
        lhs,
        w,
        window_strides=options.stride,
        padding=padding,
        rhs_dilation=options.dilation,
        dimension_numbers=("NHWC", "OIHW", "NHWC"),
        feature_group_count=groups,
        precision=jax.lax.Precision.HIGHEST,
    )
    if y.shape[1:3] != (rows.count, cols.count):  # a pad past the last window, unread
        y = y[:, : rows.count, : cols.count, :]
    return y if x.ndim == 4 else y[0]


def correlate_multi_transpose(xp, x, w, plan):
    """``conv_transpose2d``: ``lax.conv_general_dilated`` with ``lhs_dilation`` (``lax.conv_transpose``'s form).

    The flipped kernel, regrouped to ``(C_out, C_in // groups, h, w)``,
    slides over the stride-dilated input padded by ``dilation * (k - 1)``
    less the crop (negative pads crop), plus ``output_padding`` after it; in
    ``NCHW`` or ``NHWC`` as the plan's layout says.
    """
    dtype = result_dtype(xp, x.dtype, w.dtype)
    if not xp.isdtype(dtype, "real floating"):
        return NotImplemented
    x = xp.astype(x, dtype, copy=False)
    w = xp.astype(w, dtype, copy=False)
    c_in, og, h, wd = w.shape
    groups = plan.groups
    rhs = xp.reshape(xp.flip(w, axis=(-2, -1)), (groups, c_in // groups, og, h, wd))
    rhs = xp.reshape(xp.permute_dims(rhs, (0, 2, 1, 3, 4)), (groups * og, c_in // groups, h, wd))
    (dh, dw), ops = plan.options.dilation, plan.output_padding
    (top, bottom), (left, right) = plan.padding
    padding = (
        (dh * (h - 1) - top, dh * (h - 1) - bottom + ops[0]),
        (dw * (wd - 1) - left, dw * (wd - 1) - right + ops[1]),
    )
    layout = "NHWC" if plan.channels_last else "NCHW"
    lhs = x if x.ndim == 4 else x[None, ...]
    y = jax.lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides=(1, 1),
        padding=padding,
        lhs_dilation=plan.options.stride,
        rhs_dilation=plan.options.dilation,
        dimension_numbers=(layout, "OIHW", layout),
        feature_group_count=groups,
        precision=jax.lax.Precision.HIGHEST,
    )
    return y if x.ndim == 4 else y[0]


class Conv2D(_layer.Conv2D):
    """``xcorr.Conv2D`` as a jax pytree (equinox-style).

    ``weight`` and ``bias`` are the leaves; the hyper-parameters (``spec``)
    are static, so ``jax.jit``, ``jax.grad`` and ``jax.vmap`` take the layer
    itself, and ``jax.grad(loss)(layer, ...)`` returns a ``Conv2D`` of
    gradients. The layer is immutable: ``layer.replace(weight=...)`` makes a
    new one. Same arguments as ``xcorr.Conv2D`` (``backend`` may be omitted
    or "jax").
    """

    def __init__(self, kernel_size, /, **kwargs):
        spec, params = self._configure("jax", kernel_size, kwargs)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "weight", params["weight"])
        object.__setattr__(self, "bias", params["bias"])

    def __setattr__(self, name, value):
        msg = f"{self._public_name} is immutable (a jax pytree); use layer.replace({name}=...)"
        raise AttributeError(msg)

    def __call__(self, x):
        return self.spec.apply(self.weight, self.bias, x)

    def replace(self, **params):
        """A new layer with the given ``weight`` and/or ``bias``."""
        unknown = set(params) - {"weight", "bias"}
        if unknown:
            msg = f"replace takes weight and bias; got {sorted(unknown)}"
            raise TypeError(msg)
        return _make_layer(type(self), self.spec, params.get("weight", self.weight), params.get("bias", self.bias))

    def __repr__(self) -> str:
        return f"{self._public_name}({self.spec.describe()})"


class Conv2DTranspose(_layer.Conv2DTranspose, Conv2D):
    """``xcorr.Conv2DTranspose`` as a jax pytree, like ``Conv2D`` (``weight`` and ``bias`` are the leaves)."""


def _make_layer(cls, spec, weight, bias):
    layer = object.__new__(cls)
    object.__setattr__(layer, "spec", spec)
    object.__setattr__(layer, "weight", weight)
    object.__setattr__(layer, "bias", bias)
    return layer


def _unflatten(cls, spec, leaves):
    return _make_layer(cls, spec, *leaves)


for _cls in (Conv2D, Conv2DTranspose):
    jax.tree_util.register_pytree_with_keys(
        _cls,
        lambda layer: (
            (
                (jax.tree_util.GetAttrKey("weight"), layer.weight),
                (jax.tree_util.GetAttrKey("bias"), layer.bias),
            ),
            layer.spec,
        ),
        functools.partial(_unflatten, _cls),
        flatten_func=lambda layer: ((layer.weight, layer.bias), layer.spec),
    )
del _cls


# --- flax serialization ------------------------------------------------------
# flax.serialization.to_state_dict / from_state_dict (and to_bytes / from_bytes)
# take the layer as {"weight": ..., "bias": ...}. flax costs a second to import,
# so the layer is registered when flax.serialization is imported, not before:
# now if it already is, else by a one-shot import hook.


def _to_state_dict(layer):
    return {"weight": layer.weight, "bias": layer.bias}


def _from_state_dict(layer, state):
    import jax.numpy as jnp
    from flax import serialization

    if not isinstance(state, dict) or set(state) != {"weight", "bias"}:
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        msg = f"the state of an xcorr {type(layer).__name__} is a dict with the keys 'bias' and 'weight'; got {got}"
        raise ValueError(msg)
    params = {}
    for name in ("weight", "bias"):
        current = getattr(layer, name)
        value = serialization.from_state_dict(current, state[name], name=name)
        if current is None or value is None:
            if (current is None) != (value is None):
                msg = f"the layer's {name} is {'None' if current is None else 'an array'}; the state's is {value!r:.60}"
                raise ValueError(msg)
            params[name] = None
            continue
        if tuple(value.shape) != tuple(current.shape):
            msg = f"state[{name!r}] must have the layer's shape {tuple(current.shape)}; got {tuple(value.shape)}"
            raise ValueError(msg)
        params[name] = jnp.asarray(value, dtype=current.dtype)
    return layer.replace(**params)


def _register_with_flax(serialization) -> None:
    for layer_class in (Conv2D, Conv2DTranspose):
        serialization.register_serialization_state(layer_class, _to_state_dict, _from_state_dict, override=True)


class _FlaxHook:
    """A ``sys.meta_path`` finder that registers the layer once ``flax.serialization`` is executed."""

    name = "flax.serialization"

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot; the other finders locate the module
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            _register_with_flax(module)

        spec.loader.exec_module = exec_and_register
        return spec


if _FlaxHook.name in sys.modules:
    _register_with_flax(sys.modules[_FlaxHook.name])
else:
    sys.meta_path.insert(0, _FlaxHook())


# --- the adapter -------------------------------------------------------------


_STEPS: dict[str, object] = {}


def _step(loss: str):
    """One jitted gradient-descent step of a layer on ``loss`` (compiled once per loss)."""
    if loss not in _STEPS:
        import jax.numpy as jnp

        from .._fit import loss_and_gradient

        def objective(layer, x, y):
            return loss_and_gradient(jnp, layer(x) - y, loss)[0]

        @jax.jit
        def step(layer, x, y, lr):
            value, grads = jax.value_and_grad(objective)(layer, x, y)
            new = jax.tree.map(lambda p, g: p - jnp.asarray(lr, dtype=p.dtype) * g, layer, grads)
            return new, value

        _STEPS[loss] = step
    return _STEPS[loss]


def _gradient(fn, x, index):
    from .._empirical import check_index, full_index

    y = fn(x)  # a concrete forward pass first, to check the index against the output's shape
    full = full_index(index, y.ndim)
    check_index(tuple(y.shape), full)
    return jax.grad(lambda x: fn(x)[full])(x)


@dataclass(frozen=True)
class JaxTuning(Tuning):
    """The jax adapter's cost model and thresholds (``python -m benchmarks``, float32, CPU, 2 cores)."""

    costs: Costs = Costs(call=50e3, per_output=0.3, per_tap=0.1, fft_call=500e3, fft_point=0.4)
    # numba's kernels as XLA custom calls (backends/_jax_numba.py): whether
    # they run, from how many outputs, and from how many products threaded.
    numba: bool = True
    numba_min_outputs: int = 1 << 14
    numba_threaded_work: int = 1 << 21
    # Fully unrolled shift-and-add up to this many kernel taps (PERF-NOTES: the
    # unrolled form is fastest to 15x15 and far slower at 21x21); a fori_loop
    # over kernel rows beyond.
    unroll_taps: int = 225
    # Kernels of up to this many taps read a fill extension through one pad per
    # tap (fused by XLA); larger ones through one extension (see _tap_windows).
    pad_per_tap: int = 12
    # Direct correlations with every window inside the input take numba's
    # kernel from outputs of this many bytes (a fresh mapping each call, given
    # huge pages by the handler; see _numba_forward), XLA's fused code below.
    numba_fresh_output_bytes: int = 1 << 25
    # Where numba's kernel gradient does not apply, the direct kernel gradient
    # as one native convolution on the CPU (faster than XLA's h*w reductions).
    native_kernel_gradient: bool = True


class JaxAdapter(Adapter):
    """jax: a custom VJP, jitted kernels per configuration, numba's kernels as XLA custom calls."""

    name = "jax"
    array_module = "jax.numpy"
    tuning = JaxTuning()
    native = True
    eager = False
    autodiff = True
    # Arrays committed to different devices: jax refuses the jitted call itself.
    devices = False

    def correlate(self, xp, x, k, options, geometry):
        return correlate(xp, x, k, options, geometry)

    def prepare_correlate(self, xp, x, k, options, geometry):
        # The compiled kernel of this configuration, called directly: an
        # eager call is one jitted dispatch.
        if xp.isdtype(result_dtype(xp, x.dtype, k.dtype), ("real floating", "complex floating")):
            return _differentiable_kernel(options, geometry)
        return _kernel(options, geometry)

    def kernel_gradient(self, xp, x, k, g, options, geometry, method):
        gk = kernel_gradient(xp, x, k, g, options, geometry, method)
        if gk is not NotImplemented:
            return gk
        if method == "direct" and self.tuning.native_kernel_gradient and jax.default_backend() == "cpu":
            # The kernel gradient's h*w large dot products as one native
            # convolution (g as the kernel) instead of h*w XLA reductions;
            # CPU only: GPU reductions are fast, and GPU convolutions may
            # round float32 to TF32.
            method = "native"
        return super().kernel_gradient(xp, x, k, g, options, geometry, method)

    def kernel_gradient_sum(self, xp, xe, g, options, k_shape):
        if options.method == "native":
            gk = kernel_gradient_sum(xp, xe, g, options, k_shape)
            if gk is not NotImplemented:
                return gk
        return super().kernel_gradient_sum(xp, xe, g, options, k_shape)

    def correlate_multi(self, xp, x, w, options, geometry, groups):
        return self.correlate_multi_precision(xp, x, w, options, geometry, groups, None, None)

    def correlate_multi_precision(self, xp, x, w, options, geometry, groups, precision, preferred_element_type):
        if options.method in ("auto", "native"):
            y = correlate_multi(xp, x, w, options, geometry, groups, precision, preferred_element_type)
            if y is not NotImplemented:
                return y
        if preferred_element_type is None:
            return super().correlate_multi(xp, x, w, options, geometry, groups)
        # The other methods accumulate in the preferred type (or the operands' where wider).
        preferred = xp.dtype(preferred_element_type)
        wide = xp.result_type(result_dtype(xp, x.dtype, w.dtype), preferred)
        y = super().correlate_multi(xp, xp.astype(x, wide), xp.astype(w, wide), options, geometry, groups)
        return xp.astype(y, preferred)

    def correlate_multi_channels_last(self, xp, x, w, options, geometry, groups):
        if options.method in ("auto", "native"):
            y = correlate_multi_channels_last(xp, x, w, options, geometry, groups)
            if y is not NotImplemented:
                return y
        return super().correlate_multi_channels_last(xp, x, w, options, geometry, groups)

    def correlate_multi_transpose(self, xp, x, w, plan):
        y = correlate_multi_transpose(xp, x, w, plan)
        if y is not NotImplemented:
            return y
        return super().correlate_multi_transpose(xp, x, w, plan)

    def namespace(self):
        import jax.numpy

        return jax.numpy

    def check_layer_dtype(self, dtype):
        if dtype == "float64" and not jax.config.jax_enable_x64:
            msg = (
                'dtype="float64" on backend "jax" needs 64-bit mode: '
                'jax.config.update("jax_enable_x64", True) first'
            )
            raise ValueError(msg)

    def layer_class(self):
        return Conv2D

    def transpose_layer_class(self):
        return Conv2DTranspose

    def fit(self, layer, x, y, lr, steps, loss, record):
        step = _step(loss)
        for _ in range(steps):
            layer, value = step(layer, x, y, lr)
            record(float(value))
        return layer

    def gradient(self, fn, x, index):
        return _gradient(fn, x, index), "jax.grad"

    def from_numpy(self, a, *, device=None):
        return jax.device_put(a, device)

    def device(self, kind):
        if kind == "gpu":
            try:
                return jax.devices("gpu")[0]
            except RuntimeError:
                msg = "jax sees no GPU device"
                raise LookupError(msg) from None
        return super().device(kind)

    def with_parameters(self, layer, params):
        return layer.replace(**params)


ADAPTER = JaxAdapter()
