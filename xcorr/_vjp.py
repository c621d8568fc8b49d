"""Vector-Jacobian products of corr2d / conv2d, in pure array-API code.

The forward pass is ``y = window_sum(extend(x), k)``: a boundary extension of
``x`` followed by a strided, dilated shift-and-add. Its VJP is the adjoint of
each step, in reverse:

* the shift-and-add's adjoint scatters the output gradient ``g`` back through
  the windows. With ``g`` zero-inserted to undo the stride, that scatter is a
  "full" convolution of ``g`` with the (dilated) kernel, computed by the
  dispatching forward ``_correlate`` so per-backend fast paths serve the
  backward too;
* the extension's adjoint folds the gradient of the extended image back onto
  ``x``: a "wrap", "symm", "reflect" or "edge" position adds onto the pixel
  it copied, a "fill" position is dropped;
* the kernel gradient is ``gk[a, b] = sum(g * window(a, b) of extend(x))``,
  summed over batch dimensions that ``k`` was broadcast along: one reduction
  per tap, or, where the FFT pays off, one valid correlation of ``extend(x)``
  with ``g`` as the kernel (stride and dilation swap roles).

The VJP is the transpose of the (bi)linear map, without conjugation: for
complex inputs it is what ``jax.vjp`` returns. Nothing is written in place,
so it runs on immutable (jax) and lazy (dask) arrays. Where the FFT serves
an eager library without autodiff of its own, both gradients come from one
spectrum of ``g`` instead (``_fft.vjp``, which multiplies into its own
spectra).
"""

from __future__ import annotations

from dataclasses import replace

from . import _fft, _generic, _methods
from ._adapter import Adapter, adapter_for
from ._compat import device, isdtype
from ._correlate import _correlate
from ._options import AxisPlan, Geometry, Options, check_arrays, plan, result_dtype
from ._typing import Array, Boundary, Method, Mode, Padding, Pair, Scalar

__all__ = ["conv2d_vjp", "corr2d_vjp", "vjp"]


def zero_insert(xp, g, axis: int, step: int):
    """Put ``step - 1`` zeros between consecutive entries of ``g`` along ``axis``."""
    if step == 1:
        return g
    n = g.shape[axis]
    axis = axis % g.ndim
    zeros = xp.zeros_like(g)
    # (..., n, step, ...) with g in slot 0, then merge the two axes.
    stacked = xp.stack([g] + [zeros] * (step - 1), axis=axis + 1)
    shape = (*g.shape[:axis], n * step, *g.shape[axis + 1 :])
    merged = xp.reshape(stacked, shape)
    index = [slice(None)] * g.ndim
    index[axis] = slice(0, (n - 1) * step + 1)
    return merged[tuple(index)]


def fold_axis(xp, ge, axis: int, lo: int, hi: int, size: int, boundary: str):
    """Adjoint of ``_generic.extend_axis``: sum extended positions onto their sources."""
    total = None
    position = 0  # index into ge of the current run's first extended position
    for run in _generic._segments(lo, hi, size, boundary):
        if run[0] == "fill":
            position += run[1]
            continue
        if run[0] == "repeat":  # "edge": n copies of one element, summed onto it
            index, n = run[1], run[2]
            piece = xp.sum(_generic._take_axis(xp, ge, axis, position, position + n), axis=axis, keepdims=True)
            position += n
            first = last = index
        else:
            first, last = run[1], run[2]
            n = abs(last - first) + 1
            piece = _generic._take_axis(xp, ge, axis, position, position + n)
            position += n
            if first > last:
                piece = xp.flip(piece, axis=axis)
        pieces = []
        for count in (min(first, last), None, size - 1 - max(first, last)):
            if count is None:
                pieces.append(piece)
            elif count:
                shape = list(ge.shape)
                shape[axis] = count
                pieces.append(xp.zeros(tuple(shape), dtype=ge.dtype, device=device(ge)))
        placed = pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)
        total = placed if total is None else total + placed
    if total is None:  # every position read the fill value
        shape = list(ge.shape)
        shape[axis] = size
        total = xp.zeros(tuple(shape), dtype=ge.dtype, device=device(ge))
    return total


def unbroadcast(xp, a, shape: tuple[int, ...]):
    """Sum ``a`` over the dimensions along which ``shape`` was broadcast to ``a.shape``."""
    extra = a.ndim - len(shape)
    if extra:
        a = xp.sum(a, axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1)
    if axes:
        a = xp.sum(a, axis=axes, keepdims=True)
    return a


def as_input_dtype(xp, grad, a):
    """Cast a gradient to the dtype of the operand it belongs to.

    A real operand of a complex result gets the real part (the transpose of
    the real-to-complex embedding); an integer operand keeps the floating
    result dtype, since its own dtype cannot hold a gradient.
    """
    if isdtype(xp, a.dtype, "integral"):
        return grad
    if isdtype(xp, grad.dtype, "complex floating") and not isdtype(xp, a.dtype, "complex floating"):
        grad = xp.real(grad)
    return xp.astype(grad, a.dtype, copy=False)


def vjp(xp, x, k, g, options: Options, geometry: Geometry, *, need_x=True, need_k=True):
    """``(gx, gk)`` of validated inputs: the transpose of the correlation at ``g``.

    ``need_x=False`` or ``need_k=False`` skips that gradient (it is None):
    training a layer needs no input gradient, and torch tells which it needs.
    The adapter of ``xp`` computes it (``Adapter.vjp``), on the taps'
    windows laid end to end where the dilation leaves gaps between them
    (``compacted_vjp``).
    """
    adapter = adapter_for(xp)
    both = compacted_vjp(adapter, xp, x, k, g, options, geometry, need_x, need_k)
    if both is not None:
        return both
    return adapter.vjp(xp, x, k, g, options, geometry, need_x, need_k)


class _Shape:
    """The shape and dtype of an operand whose values the gradient does not read."""

    def __init__(self, shape: tuple[int, ...], dtype):
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)


def compacted_vjp(adapter: Adapter, xp, x, k, g, options: Options, geometry: Geometry, need_x, need_k):
    """``(gx, gk)`` through ``_generic.compact``, or None where no axis gains from it.

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
    plans = (_generic.compact_axis(rows), _generic.compact_axis(cols))
    if plans == (None, None):
        return None
    dtype = result_dtype(xp, x.dtype, k.dtype)
    if need_k:
        xw, inner = _generic.compact(xp, xp.astype(x, dtype, copy=False), geometry, options)
    else:  # only the shape of x is read (jax's transpose does not know its values)
        sizes = [ap.hi - ap.lo + 1 if c is None else c.size for ap, c in ((rows, plans[0]), (cols, plans[1]))]
        inner = Geometry(
            geometry.batch,
            *(
                AxisPlan(size, ap.taps, ap.dilation if c is None else c.dilation, ap.step, 0, ap.count)
                for size, ap, c in ((sizes[0], rows, plans[0]), (sizes[1], cols, plans[1]))
            ),
        )
        xw = _Shape((*x.shape[:-2], sizes[0], sizes[1]), dtype)
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
            piece = _generic._take_axis(xp, gw, axis, tap * length, (tap + 1) * length)
            folded = fold_axis(xp, piece, axis, first, first + length - 1, ap.size, options.boundary)
            total = folded if total is None else total + folded
        gw = total
    return as_input_dtype(xp, unbroadcast(xp, gw, tuple(x.shape)), x), gk


def generic_vjp(adapter: Adapter, xp, x, k, g, options: Options, geometry: Geometry, need_x, need_k):
    """``Adapter.vjp``'s generic implementation: ``_fft.vjp`` where it applies (``_fused_fft``);
    otherwise the input gradient, then ``adapter.kernel_gradient``."""
    dtype = result_dtype(xp, result_dtype(xp, x.dtype, k.dtype), g.dtype)
    if _fused_fft(adapter, xp, x, k, g, options, geometry, dtype):
        return _fft.vjp(xp, x, k, g, options, geometry, need_x, need_k)
    # Only the operand that the other gradient reads is cast (jax's transpose
    # knows just the shape and dtype of the one it differentiates).
    g = xp.astype(g, dtype, copy=False)
    gx = _input_gradient(xp, x, xp.astype(k, dtype, copy=False), g, options, geometry) if need_x else None
    gk = None
    if need_k:
        xc = xp.astype(x, dtype, copy=False)
        method = options.method
        if method == "auto":
            kind = _methods.dtype_kind(xp, dtype)
            costs = adapter.costs(tuple(k.shape), geometry)
            method = _methods.choose_method(costs, kind, tuple(xc.shape), tuple(k.shape), geometry)
        gk = adapter.kernel_gradient(xp, xc, k, g, options, geometry, method)
        if options.convolve:
            gk = xp.flip(gk, axis=(-2, -1))
        gk = as_input_dtype(xp, gk, k)
    return gx, gk


def _fused_fft(adapter: Adapter, xp, x, k, g, options: Options, geometry: Geometry, dtype) -> bool:
    """Whether ``_fft.vjp`` takes both gradients from one spectrum of ``g``.

    Where the method is "fft", or "auto" picks it for finite inputs, for a
    real float32/float64 result, stride 1 and a "fill" extension (or none
    reached); on eager libraries without an autodiff of their own: jax's
    transpose knows only the shape of the operand it differentiates, and
    dask takes its kernel gradient block by block.
    """
    if not adapter.eager or adapter.autodiff or options.method not in ("fft", "auto"):
        return False
    if options.stride != (1, 1) or not (geometry.inside or options.boundary == "fill"):
        return False
    if _methods.dtype_kind(xp, dtype) != "real floating":
        return False
    if options.method == "auto":
        costs = adapter.costs(tuple(k.shape), geometry)
        if _methods.choose_method(costs, "real floating", tuple(x.shape), tuple(k.shape), geometry) != "fft":
            return False
        return all(bool(xp.all(xp.isfinite(a))) for a in (x, k, g))  # NaN/inf would spread over an FFT
    return True


def _input_gradient(xp, x, kc, g, options: Options, geometry: Geometry, *, insert=None):
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
    ge = _correlate(gz, kc, back)
    ge = fold_axis(xp, ge, -2, rows.lo, rows.hi, rows.size, options.boundary)
    ge = fold_axis(xp, ge, -1, cols.lo, cols.hi, cols.size, options.boundary)
    return as_input_dtype(xp, unbroadcast(xp, ge, tuple(x.shape)), x)


def generic_kernel_gradient(adapter: Adapter, xp, xc, k, g, options: Options, geometry: Geometry, method):
    """``Adapter.kernel_gradient``'s generic implementation (correlation orientation, result dtype)."""
    rows, cols = geometry.rows, geometry.cols
    k_batch = tuple(k.shape[:-2])
    # Kernel gradient: one reduction per tap over the windows of extend(x).
    xe = _generic.extend(xp, xc, geometry, options)
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
        ra = _generic.window(rows, a)
        for b in range(cols.taps):
            window = xe[..., ra, _generic.window(cols, b)]
            if use_vecdot:
                term = xp.sum(xp.vecdot(gc, window, axis=-1), axis=-1)
            else:
                term = xp.sum(g * window, axis=(-2, -1))
            taps.append(unbroadcast(xp, term, k_batch))
    return xp.reshape(xp.stack(taps, axis=-1), (*k_batch, rows.taps, cols.taps))


def _check_cotangent(xp, g, geometry: Geometry, x, k):
    check_arrays(x, g, k_name="g")
    if tuple(g.shape) != geometry.out_shape:
        msg = (
            f"g must have the shape of the output, {geometry.out_shape}; got shape "
            f"{tuple(g.shape)} (x has shape {tuple(x.shape)}, k has shape {tuple(k.shape)})"
        )
        raise ValueError(msg)


def _public_vjp(op: str, x, k, g, mode, boundary, fillvalue, stride, dilation, method, padding):
    """``corr2d_vjp`` (``op`` "corr2d") or ``conv2d_vjp``: parse, check, then the VJP."""
    options = Options.parse(
        mode=mode, boundary=boundary, fillvalue=fillvalue, stride=stride, dilation=dilation,
        convolve=op == "conv2d", method=method, padding=padding,
    )
    xp = check_arrays(x, k)
    geometry = plan(x.shape, k.shape, options)
    _check_cotangent(xp, g, geometry, x, k)
    return vjp(xp, x, k, g, options, geometry)


_VJP_DOC = """Gradients of ``{name}(x, k, **options)`` for an output gradient ``g``.

    Returns ``(gx, gk)`` with ``gx[...] = sum(g * d{name}/dx[...])`` and
    likewise for ``k``: the vector-Jacobian product of the (bilinear) map,
    exact, for every mode, boundary, padding, stride, dilation and batch shape. It is
    pure array-API code, so it trains models on numpy, array-api-strict,
    dask (lazily) and cupy; the torch and jax adapters use it as their
    backward pass.

    Parameters
    ----------
    x : array, shape (..., H, W)
        Input of the forward call.
    k : array, shape (h, w) or (..., h, w)
        Kernel of the forward call.
    g : array, shape of ``{name}(x, k, **options)``
        Gradient of a scalar loss with respect to the output.
    mode, boundary, fillvalue, stride, dilation, padding
        The options of the forward call; see ``xcorr.{name}``.
    method : {{"auto", "direct", "fft", "native"}}, default "auto"
        How the correlations inside the gradients are computed (see
        ``xcorr.{name}``): the input gradient's "full" correlation, and the
        kernel gradient as one reduction per tap ("direct") or one FFT
        correlation ("fft"; "auto" picks with the forward's cost model).

    Returns
    -------
    gx : array, shape of ``x``
        Gradient with respect to ``x``, summed over the batch dimensions
        along which ``x`` was broadcast.
    gk : array, shape of ``k``
        Gradient with respect to ``k``, summed over the batch dimensions
        along which ``k`` was broadcast (one kernel for a batch gets the sum
        over the batch).

    Both have the dtype of their operand (the result dtype for an integer
    operand; the real part for a real operand of a complex result). For
    complex inputs this is the transpose without conjugation, as ``jax.vjp``
    defines it.

    Raises
    ------
    TypeError, ValueError
        As ``xcorr.{name}`` for ``x``, ``k`` and the options, and ValueError
        when ``g`` does not have the output's shape.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x = xp.reshape(xp.arange(9.0), (3, 3))
    >>> k = xp.asarray([[1.0, -1.0]])
    >>> gx, gk = xcorr.{name}_vjp(x, k, xp.ones((3, 2)))
    >>> gk
    Array([[{gk}]], dtype=array_api_strict.float64)
    """


def corr2d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    method: Method = "auto",
    padding: Padding = None,
) -> tuple[Array, Array]:
    return _public_vjp("corr2d", x, k, g, mode, boundary, fillvalue, stride, dilation, method, padding)


def conv2d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    method: Method = "auto",
    padding: Padding = None,
) -> tuple[Array, Array]:
    return _public_vjp("conv2d", x, k, g, mode, boundary, fillvalue, stride, dilation, method, padding)


corr2d_vjp.__doc__ = _VJP_DOC.format(name="corr2d", gk="21., 27.")
conv2d_vjp.__doc__ = _VJP_DOC.format(name="conv2d", gk="27., 21.")
