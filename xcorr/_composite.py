"""Operations composed from an adapter's own: adjoints, multi-channel and transposed correlation.

Each takes the namespace ``xp`` and the adapter it was handed (the generic
implementations of ``Adapter.vjp``, ``kernel_gradient``, ``correlate_multi``,
``correlate_multi_vjp`` and ``correlate_multi_transpose``): a correlation
inside one goes to that adapter (``_prepared.correlate``), so its fast paths
serve these too, and nothing here looks an adapter up or validates again.
"""

from __future__ import annotations

from dataclasses import replace

from . import _cost_model, _direct, _fft
from ._compat import device, isdtype
from ._direct import as_input_dtype, extend_axis, fold_axis, unbroadcast, zero_insert
from ._layout import to_first, to_last
from ._operations import AdapterOperations
from ._options import AxisPlan, Geometry, Like, Options, plan, result_dtype
from ._prepared import correlate, fft_allowed
from ._transpose_plan import TransposePlan

# -- one plane: the VJP ----------------------------------------------------------


def adapter_vjp(adapter: AdapterOperations, xp, x, k, g, options: Options, geometry: Geometry, need_x, need_k):
    """``(gx, gk)`` by ``adapter.vjp``, on the taps' windows laid end to end where that saves memory."""
    both = compacted_vjp(adapter, xp, x, k, g, options, geometry, need_x, need_k)
    if both is not None:
        return both
    return adapter.vjp(xp, x, k, g, options, geometry, need_x, need_k)


def compacted_vjp(adapter: AdapterOperations, xp, x, k, g, options: Options, geometry: Geometry, need_x, need_k):
    """``(gx, gk)`` through ``_direct.compact``, or None where no axis gains from it.

    With a dilation wider than the output, the extended image (and the
    gradient of it, or a dilated kernel) spans the dilated kernel, mostly
    positions no window reads: ``dilation=100_000`` on a small image would
    take hundreds of GiB. As the forward does, the correlation is taken on
    the taps' windows laid end to end (every window inside, a dilation of
    one window's length): its kernel gradient is ``gk``, and folding the
    gradient of each tap's window onto the pixels it was extended from
    (``fold_axis``, with the boundary) gives ``gx``. Memory of the order of
    the forward's, the outputs times the taps.
    """
    rows, cols = geometry.rows, geometry.cols
    plans = (_direct.compact_axis(rows), _direct.compact_axis(cols))
    if plans == (None, None):
        return None
    dtype = result_dtype(xp, x.dtype, k.dtype)
    if need_k:
        xw, inner = _direct.compact(xp, xp.astype(x, dtype, copy=False), geometry, options)
    else:  # only the shape of x is read (jax's transpose does not know its values)
        sizes = [ap.hi - ap.lo + 1 if c is None else c.size for ap, c in ((rows, plans[0]), (cols, plans[1]))]
        inner = Geometry(
            geometry.batch,
            tuple(
                AxisPlan(size, ap.taps, ap.dilation if c is None else c.dilation, ap.step, 0, ap.count)
                for size, ap, c in ((sizes[0], rows, plans[0]), (sizes[1], cols, plans[1]))
            ),
        )
        xw = Like((*x.shape[:-2], sizes[0], sizes[1]), dtype)
    inner_options = replace(
        options, mode="valid", boundary="fill", fillvalue=0,
        dilation=(inner.rows.dilation, inner.cols.dilation), padding=None,
    )  # fmt: skip
    gw, gk = adapter.vjp(xp, xw, k, g, inner_options, inner, need_x, need_k)
    if gw is None:
        return None, gk
    for axis, ap, compacted in ((-2, rows, plans[0]), (-1, cols, plans[1])):
        if compacted is None:
            gw = fold_axis(xp, gw, axis, ap.lo, ap.hi, ap.size, options.boundary)
            continue
        length, total = compacted.dilation, None
        for tap in range(ap.taps):
            first = ap.lo + tap * ap.dilation
            piece = _direct.take_axis(xp, gw, axis, tap * length, (tap + 1) * length)
            folded = fold_axis(xp, piece, axis, first, first + length - 1, ap.size, options.boundary)
            total = folded if total is None else total + folded
        gw = total
    return as_input_dtype(xp, unbroadcast(xp, gw, tuple(x.shape)), x), gk


def generic_vjp(adapter: AdapterOperations, xp, x, k, g, options: Options, geometry: Geometry, need_x, need_k):
    """``Adapter.vjp``'s generic implementation: ``_fft.vjp`` where it applies (``fft_vjp_applies``);
    otherwise the input gradient, then ``adapter.kernel_gradient``."""
    dtype = result_dtype(xp, result_dtype(xp, x.dtype, k.dtype), g.dtype)
    if fft_vjp_applies(adapter, xp, x, k, g, options, geometry, dtype):
        return _fft.vjp(xp, x, k, g, options, geometry, need_x, need_k)
    # Only the operand that the other gradient reads is cast (jax's transpose
    # knows just the shape and dtype of the one it differentiates).
    g = xp.astype(g, dtype, copy=False)
    gx = input_gradient(adapter, xp, x, xp.astype(k, dtype, copy=False), g, options, geometry) if need_x else None
    gk = None
    if need_k:
        xc = xp.astype(x, dtype, copy=False)
        kind = _cost_model.dtype_kind(xp, dtype)
        method = _cost_model.concrete_method(adapter, options.method, kind, xc.shape, k.shape, geometry)

        def kernel_gradient(method=method):
            return adapter.kernel_gradient(xp, xc, k, g, options, geometry, method)

        if options.method == "auto" and method == "fft":
            # A NaN or inf in x or g would spread over the FFT's whole gradient; the direct method's
            # keeps it on the taps whose windows reach it, as "auto" must.
            gk = _where_finite(adapter, xp, (xc, g), kernel_gradient, lambda: kernel_gradient("direct"))
        else:
            gk = kernel_gradient()
        if options.convolve:
            gk = xp.flip(gk, axis=(-2, -1))
        gk = as_input_dtype(xp, gk, k)
    return gx, gk


def _where_finite(adapter: AdapterOperations, xp, arrays: tuple, fast, careful):
    """``fast()`` where every element of ``arrays`` is finite, else ``careful()`` (``Adapter.finite_or``
    over each array: values read on eager libraries, decided inside the program on jax)."""
    if not arrays:
        return fast()
    return adapter.finite_or(xp, arrays[0], lambda: _where_finite(adapter, xp, arrays[1:], fast, careful), careful)


def fft_vjp_applies(adapter: AdapterOperations, xp, x, k, g, options: Options, geometry: Geometry, dtype) -> bool:
    """Whether ``_fft.vjp`` takes both gradients from one spectrum of ``g``.

    Where the method is "fft", or "auto" picks it for finite inputs, for a
    real float32/float64 result, stride 1 and a "fill" extension (or none
    reached), in any number of axes; on eager libraries without an autodiff of their own: jax's
    transpose knows only the shape of the operand it differentiates, and
    dask takes its kernel gradient block by block.
    """
    if not adapter.eager or adapter.autodiff or options.method not in ("fft", "auto"):
        return False
    if any(a.step != 1 for a in geometry.axes) or not (geometry.inside or options.boundary == "fill"):
        return False
    if _cost_model.dtype_kind(xp, dtype) != "real floating":
        return False
    if options.method == "auto":
        if _cost_model.concrete_method(adapter, "auto", "real floating", x.shape, k.shape, geometry) != "fft":
            return False
        return fft_allowed(adapter, xp, x, k, g)
    return True


def input_gradient(adapter: AdapterOperations, xp, x, kc, g, options: Options, geometry: Geometry, *, insert=None):
    """The gradient of ``x``; ``insert(g, axis, step)`` undoes the stride (default: ``zero_insert``)."""
    rows, cols = geometry.rows, geometry.cols
    # Input gradient: zero-insert g (undo the stride), then a "full"
    # convolution with the dilated kernel gives the gradient of the extended
    # image; full correlation with the flipped kernel is the same thing.
    if insert is None:
        def insert(a, axis, step):
            return zero_insert(xp, a, axis, step)
    gz = insert(insert(g, -2, rows.step), -1, cols.step)
    back = replace(
        options,
        mode="full",
        boundary="fill",
        fillvalue=0,
        stride=(1, 1),
        convolve=not options.convolve,
        padding=None,
    )
    # A NaN or inf tap must meet only the outputs it produced (IEEE, as the forward and the
    # libraries' own autodiff): the "full" correlation would multiply it by the fill and the
    # inserted zeros too (inf * 0 = NaN), so a non-finite kernel takes the taps' scatter.
    ge = adapter.finite_or(
        xp, kc,
        lambda: correlate(adapter, gz, kc, back),
        lambda: adapter.scatter_taps(xp, g, kc, options, geometry),
    )  # fmt: skip
    ge = fold_axis(xp, ge, -2, rows.lo, rows.hi, rows.size, options.boundary)
    ge = fold_axis(xp, ge, -1, cols.lo, cols.hi, cols.size, options.boundary)
    return as_input_dtype(xp, unbroadcast(xp, ge, tuple(x.shape)), x)


def scatter_taps(xp, g, kc, options: Options, geometry: Geometry):
    """The gradient of the extended image as the sum over taps of ``g * k[a, b]`` placed on the tap's
    window: only the products of the forward sum (no fill or inserted zero meets the kernel), so
    non-finite taps give NaN and inf exactly where IEEE arithmetic on the forward's terms does."""
    rows, cols = geometry.rows, geometry.cols
    k = xp.flip(kc, axis=(-2, -1)) if options.convolve else kc  # the forward's orientation
    extent = (rows.hi - rows.lo + 1, cols.hi - cols.lo + 1)
    total = None
    for a in range(rows.taps):
        for b in range(cols.taps):
            term = g * k[..., a : a + 1, b : b + 1]
            for axis, ap, tap, size in ((-2, rows, a, extent[0]), (-1, cols, b, extent[1])):
                term = zero_insert(xp, term, axis, ap.step)  # zeros placed, never multiplied
                first = tap * ap.dilation
                term = extend_axis(xp, term, axis, -first, size - first - 1, "fill", 0)
            total = term if total is None else total + term
    return total


def generic_kernel_gradient(adapter: AdapterOperations, xp, xc, k, g, options: Options, geometry: Geometry, method):
    """``Adapter.kernel_gradient``'s generic implementation (correlation orientation, result dtype)."""
    if 0 in g.shape:  # an empty batch: no window, so zeros (native grouped forms refuse 0 groups)
        return xp.zeros(tuple(k.shape), dtype=xc.dtype, device=device(xc))
    rows, cols = geometry.rows, geometry.cols
    k_batch = tuple(k.shape[:-2])
    # Kernel gradient: one reduction per tap over the windows of extend(x).
    xe = _direct.extend(xp, xc, geometry, options)
    if method in ("fft", "native"):
        # Where the forward pays off through the FFT, so does this: the h*w
        # reductions are the valid correlation of extend(x) with g as the
        # kernel, stride and dilation swapping roles; one correlation, whose
        # batch sum an adapter may fold into a native call.
        swapped = Options(stride=options.dilation, dilation=options.stride, method=method)
        return adapter.kernel_gradient_sum(xp, xe, g, swapped, tuple(k.shape))
    # vecdot (which conjugates its first argument) along rows and a sum needs
    # no product temporary; libraries whose vecdot is slow on strided windows
    # or rounds differently multiply and sum instead.
    use_vecdot = adapter.vecdot_kernel_gradient
    gc = xp.conj(g) if isdtype(xp, g.dtype, "complex floating") else g
    taps = []
    for a in range(rows.taps):
        ra = _direct.window(rows, a)
        for b in range(cols.taps):
            window = xe[..., ra, _direct.window(cols, b)]
            if use_vecdot:
                term = _direct.sum_wrapping(xp, xp.vecdot(gc, window, axis=-1), -1)
            else:
                term = _direct.sum_wrapping(xp, g * window, (-2, -1))
            taps.append(unbroadcast(xp, term, k_batch))
    return xp.reshape(xp.stack(taps, axis=-1), (*k_batch, rows.taps, cols.taps))


# -- multi-channel ---------------------------------------------------------------


def _grouped(xp, x, w, groups: int):
    """Reshape to broadcastable ``(N, G, 1, Cg, H, W)`` and ``(G, Og, Cg, h, w)``."""
    n, _c, height, width = x.shape
    o, cg, h, wd = w.shape
    xg = xp.reshape(x, (n, groups, 1, cg, height, width))
    wg = xp.reshape(w, (groups, o // groups, cg, h, wd))
    return xg, wg


def _batched(xp, x):
    return x if x.ndim == 4 else xp.expand_dims(x, axis=0)


def generic_correlate_multi(adapter: AdapterOperations, xp, x, w, options: Options, geometry: Geometry, groups: int):
    """``Adapter.correlate_multi``'s generic implementation: one broadcast corr2d."""
    xb = _batched(xp, x)
    xg, wg = _grouped(xp, xb, w, groups)
    y = _direct.sum_wrapping(xp, correlate(adapter, xg, wg, options), 3)  # (N, G, Og, H', W')
    n, o = xb.shape[0], w.shape[0]
    y = xp.reshape(y, (n, o, geometry.rows.count, geometry.cols.count))
    return y if x.ndim == 4 else y[0, ...]


def generic_multi_vjp(adapter: AdapterOperations, xp, x, w, g, options: Options, geometry: Geometry, groups: int, need_x: bool):
    """``Adapter.correlate_multi_vjp``'s generic implementation: the VJP of the broadcast corr2d."""
    xb = _batched(xp, x)
    gb = _batched(xp, g)
    xg, wg = _grouped(xp, xb, w, groups)
    n, o, hh, ww = gb.shape
    cg = w.shape[1]
    gg = xp.reshape(gb, (n, groups, o // groups, 1, hh, ww))
    gg = xp.broadcast_to(gg, (n, groups, o // groups, cg, hh, ww))
    geometry = plan(tuple(xg.shape), tuple(wg.shape), options)
    gx, gw = adapter.vjp(xp, xg, wg, gg, options, geometry, need_x, True)
    if gx is not None:
        gx = xp.reshape(gx, tuple(xb.shape))
        gx = gx if x.ndim == 4 else gx[0, ...]
    return gx, xp.reshape(gw, tuple(w.shape))


# -- transposed ------------------------------------------------------------------


def crop(xp, full, tp: TransposePlan):
    """The output's rows and columns of the uncropped result (zeros past its end)."""
    (top, _), (left, _) = tp.padding
    rows, cols = tp.out_hw
    y = extend_axis(xp, full, -2, top, top + rows - 1, "fill", 0)
    return extend_axis(xp, y, -1, left, left + cols - 1, "fill", 0)


def pad_to_full(xp, g, tp: TransposePlan):
    """The adjoint of :func:`crop`: ``g`` placed in the uncropped extent, zeros around it."""
    (top, _), (left, _) = tp.padding
    rows, cols = tp.geometry.rows, tp.geometry.cols
    z = extend_axis(xp, g, -2, -top, rows.size - 1 - top, "fill", 0)
    return extend_axis(xp, z, -1, -left, cols.size - 1 - left, "fill", 0)


def finish(xp, full, tp: TransposePlan):
    """Crop the uncropped channels-first result and give it the plan's layout."""
    y = crop(xp, full, tp)
    return to_last(xp, y) if tp.channels_last else y


def generic_transpose_single(adapter: AdapterOperations, xp, x, k, tp: TransposePlan):
    """``Adapter.correlate_transpose``'s generic implementation: the input gradient of the forward
    ``corr2d`` (its "full" correlation of the zero-inserted ``x``) on the uncropped extent, whose
    batch is the broadcast batch of ``x`` and ``k``, cropped to the output."""
    rows, cols = tp.geometry.rows, tp.geometry.cols
    geometry = plan((*x.shape[:-2], rows.size, cols.size), tuple(k.shape), tp.options)
    like = Like((*geometry.batch, rows.size, cols.size), x.dtype)
    return crop(xp, input_gradient(adapter, xp, like, k, x, tp.options, geometry), tp)


def generic_transpose(adapter, xp, x, w, tp: TransposePlan):
    """``Adapter.correlate_multi_transpose``'s generic implementation.

    The input gradient of the broadcast ``corr2d`` that ``corr2d_multi``
    computes generically: ``x`` as ``(N, G, C_in/G, 1, H, W)`` output
    gradient, ``w`` as ``(G, C_in/G, C_out/G, h, w)``, summed over the input
    channels of each group (``xcorr._vjp``'s "full" correlation of the
    zero-inserted ``x``).
    """
    if tp.channels_last:
        x = to_first(xp, x)
    dtype = result_dtype(xp, x.dtype, w.dtype)
    x = xp.astype(x, dtype, copy=False)
    w = xp.astype(w, dtype, copy=False)
    xb = x if x.ndim == 4 else xp.expand_dims(x, axis=0)
    n, c_in, H, W = xb.shape
    groups = tp.groups
    cg, og, h, wd = c_in // groups, w.shape[1], w.shape[2], w.shape[3]
    rows, cols = tp.geometry.rows, tp.geometry.cols
    gg = xp.reshape(xb, (n, groups, cg, 1, H, W))
    wg = xp.reshape(w, (groups, cg, og, h, wd))
    like = Like((n, groups, 1, og, rows.size, cols.size), dtype)
    geometry = plan(like.shape, tuple(wg.shape), tp.options)
    ge = input_gradient(adapter, xp, like, wg, gg, tp.options, geometry)
    full = xp.reshape(ge, (n, groups * og, rows.size, cols.size))
    return finish(xp, full if x.ndim == 4 else full[0, ...], tp)


# -- the library's own convolution in one or three dimensions ------------------


def takes_native(adapter: AdapterOperations, xp, axes: int, method: str, dtype, w, groups: int) -> bool:
    """Whether ``corr1d_multi`` (``axes`` 1) or ``corr3d_multi`` (3) of a result ``dtype`` and weight
    ``w`` in ``groups`` groups takes :func:`native_front`: the library convolves that many axes
    itself, ``method`` is "native", or "auto" where the adapter hands such a weight to its own
    convolution (``Adapter.auto_native``), and the result is float32 or float64."""
    asked = method == "native" or (method == "auto" and adapter.auto_native(w, groups))
    return axes in adapter.native_axes and asked and dtype in (xp.float32, xp.float64)


def native_front(adapter: AdapterOperations, xp, x, w, b, dtype, plans: tuple[AxisPlan, ...], groups: int, last: bool, options):
    """``run(x, w, b)``: ``corr1d_multi`` / ``corr3d_multi`` of ``x`` ``(N, C, *spatial)`` (or
    ``(C, *spatial)``; ``last``: channels at the end) by the library's own convolution
    (``Adapter.prepare_multi_native``), planned once for the signature of ``x``, ``w`` and ``b``: the
    operands cast to the result's ``dtype`` where theirs differs; a zero extension is the call's
    padding, any other is made first along each axis. Where nothing is left to do around it, ``run``
    is the library's convolution itself."""
    zeros = options.boundary == "fill" and options.fillvalue == 0
    padded = tuple(zeros or p.inside for p in plans)  # the call's padding, else an extension made first
    made = tuple((axis, p.lo, p.hi) for axis, (p, pad) in enumerate(zip(plans, padded), start=2) if not pad)
    pads = tuple((-p.lo, max(p.hi - (p.size - 1), 0)) if pad else (0, 0) for p, pad in zip(plans, padded))
    ndim = len(plans) + 2
    single, cast = x.ndim < ndim, any(a is not None and a.dtype != dtype for a in (x, w, b))
    to_first, to_last = (0, ndim - 1, *range(1, ndim - 1)), (0, *range(2, ndim), 1)
    convolve = adapter.prepare_multi_native(
        xp, pads, tuple(p.step for p in plans), tuple(p.dilation for p in plans), groups
    )
    if not (cast or single or last or made):
        return convolve

    def run(x, w, b):
        if cast:
            x, w, b = (a if a is None or a.dtype == dtype else xp.astype(a, dtype) for a in (x, w, b))
        if single:
            x = xp.expand_dims(x, axis=0)
        if last:
            x = xp.permute_dims(x, to_first)
        for axis, lo, hi in made:
            x = extend_axis(xp, x, axis, lo, hi, options.boundary, options.fillvalue)
        y = convolve(x, w, b)
        if last:
            y = xp.permute_dims(y, to_last)
        return y[0, ...] if single else y

    return run
