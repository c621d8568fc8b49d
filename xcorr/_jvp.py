"""Jacobian-vector products (forward mode) of corr2d, conv2d and corr2d_multi.

The correlation is bilinear in ``(x, k)``, so its tangent at ``(x, k)`` in
the direction ``(dx, dk)`` is the sum of two correlations::

    corr(x + dx, k + dk) - corr(x, k) = corr(dx, k) + corr(x, dk) + corr(dx, dk)

without the second-order term. The one exception is a non-zero
``fillvalue``: the map is then affine in ``x``, and its linear part (what
``dx`` goes through) reads zeros outside ``dx``. Each term is one forward
correlation through the dispatcher, so the backends' fast paths and
``method`` serve it, and a zero (``None``) direction costs nothing.
"""

from __future__ import annotations

from dataclasses import replace

from ._call import validate_call
from ._compat import isdtype
from ._direct import extend_axis
from ._options import Call, Options, cast_integers, result_dtype
from ._prepared import correlate, half_precision, in_float32
from ._typing import Array, Boundary, DataFormat, Method, Mode, Padding, Pair, Scalar

__all__ = ["conv2d_jvp", "corr2d_jvp", "corr2d_multi_jvp", "tangent_options"]


def tangent_options(options: Options) -> Options:
    """The options of the linear map ``dx -> corr(dx, k)``: a fill value is a constant, with no tangent."""
    if options.boundary == "fill" and options.fillvalue != 0:
        return replace(options, fillvalue=0)
    return options


def _sum(xp, terms, dtype):
    if len(terms) == 1:
        return xp.astype(terms[0], dtype, copy=False)
    total, other = terms
    if total.dtype == dtype and other.dtype == dtype and not getattr(total, "requires_grad", False):
        # The first term is a fresh result of this call: added onto in place where the library
        # writes in place (one output less at the peak; immutable arrays rebind instead).
        try:
            total += other
        except (TypeError, ValueError, RuntimeError):  # a read-only or broadcast result
            total = terms[0] + other
        return total
    return xp.astype(total + other, dtype, copy=False)


def _in_tangent_dtype(xp, dtype, *arrays):
    """Integer operands cast to the tangent's dtype first: both terms then wrap in it, as one sum
    would (a term computed in a narrower dtype would wrap there), or take its floating dtype (xcorr's
    rule, ``cast_integers``); floating ones are left as they are."""
    if not isdtype(xp, dtype, "integral"):
        return cast_integers(xp, dtype, *arrays)
    return tuple(None if a is None else xp.astype(a, dtype, copy=False) for a in arrays)


def _tangent_dtype(xp, x, k, dx, dk):
    dtype = result_dtype(xp, x.dtype, k.dtype)
    for t in (dx, dk):
        if t is not None:
            dtype = result_dtype(xp, dtype, t.dtype)
    return dtype


def _public_jvp(name: str, given: dict, k_name: str = "k"):
    """``corr2d_jvp`` (``name`` "corr2d"), ``conv2d_jvp`` or ``corr2d_multi_jvp`` of the arguments
    ``given``: validate (the forward call's checks, its fillvalue's too: dx's term runs with the
    fill's linear part, 0), then one correlation per direction."""
    call = validate_call(name, given, k_name)
    xp, arrays = call.xp, (given["x"], given[k_name], given["dx"], given["d" + k_name])
    dtype = _tangent_dtype(xp, *arrays)
    if half_precision(dtype):  # both terms in float32, their sum rounded once
        return in_float32(call, dtype, _tangent, *arrays)
    return _tangent(call, *_in_tangent_dtype(xp, dtype, *arrays))


def _tangent(call: Call, x, k, dx, dk):
    """``corr(dx, k) + corr(x, dk)`` of operands in the tangent's dtype (a None direction: no term)."""
    xp, options = call.xp, call.options
    dtype = _tangent_dtype(xp, x, k, dx, dk)
    terms = [] if dx is None else [_forward(call, dx, k, tangent_options(options))]
    if dk is not None:
        if terms and call.groups is None and _add_in_bands(xp, call.adapter, terms[0], x, dk, options, call.geometry, dtype):
            return terms[0]
        terms.append(_forward(call, x, dk, options))
    return _sum(xp, terms, dtype)


def _forward(call: Call, x, k, options: Options):
    """The forward correlation of the validated ``call``, with ``options``, of ``x`` and ``k``."""
    if call.groups is None:
        return correlate(call.adapter, x, k, options)
    if call.channels_last:  # computed channels-last natively, as corr2d_multi does
        return call.adapter.correlate_multi_channels_last(call.xp, x, k, options, call.geometry, call.groups)
    return call.adapter.correlate_multi(call.xp, x, k, options, call.geometry, call.groups)


_BANDS = 8  # the second term a band of output rows at a time: an eighth of an output at the peak
_MIN_BAND_ROWS = 64


def _add_in_bands(xp, adapter, total, x, dk, options: Options, geometry, dtype) -> bool:
    """Add ``correlate(x, dk)`` onto ``total`` band by band of output rows, in place; False (nothing
    added) where the library does not write in place or the output is too small to split.

    Each band correlates the rows (and columns) of the extended ``x`` that its windows read, a thin
    copy, in "valid" mode: the JVP then holds its result and one band, not a second output.
    """
    rows, cols = geometry.rows, geometry.cols
    band = max(_MIN_BAND_ROWS, -(-rows.count // _BANDS))
    if not adapter.eager or adapter.autodiff or total.dtype != dtype or band >= rows.count:
        return False
    valid = Options(stride=options.stride, dilation=options.dilation, convolve=options.convolve, method=options.method)
    for r0 in range(0, rows.count, band):
        r1 = min(rows.count, r0 + band)
        first = rows.lo + r0 * rows.step
        xb = extend_axis(xp, x, -2, first, first + (r1 - 1 - r0) * rows.step + rows.span - 1, options.boundary, options.fillvalue)
        xb = extend_axis(xp, xb, -1, cols.lo, cols.hi, options.boundary, options.fillvalue)
        term = correlate(adapter, xb, dk, valid)
        try:
            total[..., r0:r1, :] += term
        except (TypeError, ValueError, RuntimeError):  # a read-only result: only the first band can fail
            if r0:
                raise
            return False
    return True


_JVP_DOC = """Forward-mode derivative of ``{name}(x, k, **options)`` in the direction ``(dx, dk)``.

    Returns the tangent ``t = {name}(dx, k) + {name}(x, dk)``: the
    Jacobian-vector product of the (bilinear) map, exact, for every mode,
    boundary, stride, dilation and batch shape; two forward correlations
    (one where a direction is None), computed by the same dispatcher as
    ``xcorr.{name}`` so ``method`` and the backends' fast paths apply. With
    a non-zero ``fillvalue`` the map is affine in ``x`` and ``dx`` goes
    through its linear part (zeros outside ``dx``). The primal output is
    ``xcorr.{name}(x, k, **options)``; it is not recomputed here.

    Parameters
    ----------
    x : array, shape (..., H, W)
        Input of the forward call.
    k : array, shape (h, w) or (..., h, w)
        Kernel of the forward call.
    dx : array of the shape of ``x``, or None
        Direction for ``x`` (None: zero).
    dk : array of the shape of ``k``, or None
        Direction for ``k`` (None: zero).
    mode, boundary, fillvalue, stride, dilation, method, padding
        The options of the forward call; see ``xcorr.{name}``.

    Returns
    -------
    array, shape of ``{name}(x, k, **options)``
        The tangent, in the promoted dtype of the four arrays.

    Raises
    ------
    TypeError, ValueError
        As ``xcorr.{name}`` for ``x``, ``k`` and the options; ValueError when
        ``dx``/``dk`` do not have the shapes of ``x``/``k`` or both are None.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x = xp.reshape(xp.arange(9.0), (3, 3))
    >>> k = xp.asarray([[1.0, -1.0]])
    >>> xcorr.{name}_jvp(x, k, xp.ones((3, 3)), None)
    Array([[{t}, {t}],
           [{t}, {t}],
           [{t}, {t}]], dtype=array_api_strict.float64)
    """


def corr2d_jvp(
    x: Array,
    k: Array,
    dx: Array | None,
    dk: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    method: Method = "auto",
    padding: Padding = None,
) -> Array:
    return _public_jvp("corr2d", locals())


def conv2d_jvp(
    x: Array,
    k: Array,
    dx: Array | None,
    dk: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    method: Method = "auto",
    padding: Padding = None,
) -> Array:
    return _public_jvp("conv2d", locals())


corr2d_jvp.__doc__ = _JVP_DOC.format(name="corr2d", t="0.")
conv2d_jvp.__doc__ = _JVP_DOC.format(name="conv2d", t="0.")


def corr2d_multi_jvp(
    x: Array,
    w: Array,
    dx: Array | None,
    dw: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    groups: int = 1,
    method: Method = "auto",
    padding: Padding = None,
    data_format: DataFormat = "channels_first",
) -> Array:
    """Forward-mode derivative of ``corr2d_multi(x, w, **options)`` in the direction ``(dx, dw)``.

    Returns the tangent ``corr2d_multi(dx, w) + corr2d_multi(x, dw)`` (two
    multi-channel correlations, one where a direction is None), with the
    linear part of a non-zero fill for ``dx``, as ``xcorr.corr2d_jvp``.

    Parameters
    ----------
    x, w
        The operands of the forward call.
    dx : array of the shape of ``x``, or None
    dw : array of the shape of ``w``, or None
    mode, boundary, fillvalue, stride, dilation, groups, method, padding, data_format
        The options of the forward call; see ``xcorr.corr2d_multi``.

    Returns
    -------
    array, shape of ``corr2d_multi(x, w, **options)``

    Raises
    ------
    TypeError, ValueError
        As ``corr2d_multi``, and ValueError when ``dx``/``dw`` do not have the
        shapes of ``x``/``w`` or both are None.

    Examples
    --------
    The correlation is linear in each operand: its derivative in the
    direction ``dw`` (with ``dx=None``) is the correlation with ``dw``.

    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.arange(16.0).reshape(1, 1, 4, 4), np.ones((2, 1, 2, 2))
    >>> dw = np.ones_like(w)
    >>> dy = xcorr.corr2d_multi_jvp(x, w, None, dw)
    >>> dy[0, 0].tolist()
    [[10.0, 14.0, 18.0], [26.0, 30.0, 34.0], [42.0, 46.0, 50.0]]
    >>> bool(np.array_equal(dy, xcorr.corr2d_multi(x, dw)))
    True
    """
    return _public_jvp("corr2d_multi", locals(), "w")
