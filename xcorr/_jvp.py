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

from ._adapter import adapter_for
from ._compat import array_namespace, isdtype
from ._direct import extend_axis
from ._layout import check_last, parse_data_format, to_first
from ._multi import check_multi, corr2d_multi, correlate_multi
from ._options import Options, check_arrays, check_integral_fill, plan, result_dtype
from ._padding import parse_int
from ._prepared import correlate
from ._typing import Array, Boundary, DataFormat, Method, Mode, Padding, Pair, Scalar

__all__ = ["conv2d_jvp", "corr2d_jvp", "corr2d_multi_jvp", "tangent_options"]


def tangent_options(options: Options) -> Options:
    """The options of the linear map ``dx -> corr(dx, k)``: a fill value is a constant, with no tangent."""
    if options.boundary == "fill" and options.fillvalue != 0:
        return replace(options, fillvalue=0)
    return options


def _check_tangent(name: str, t, a, a_name: str) -> None:
    check_arrays(a, t, x_name=a_name, k_name=name, x_checked=True)  # ``a`` (x or k) is checked
    if tuple(t.shape) != tuple(a.shape):
        msg = f"{name} must have the shape of {a_name}, {tuple(a.shape)}; got shape {tuple(t.shape)}"
        raise ValueError(msg)


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
    would (a term computed in a narrower dtype would wrap there); floating ones are left as they are."""
    if not isdtype(xp, dtype, "integral"):
        return arrays
    return tuple(None if a is None else xp.astype(a, dtype, copy=False) for a in arrays)


def _tangent_dtype(xp, x, k, dx, dk):
    dtype = result_dtype(xp, x.dtype, k.dtype)
    for t in (dx, dk):
        if t is not None:
            dtype = result_dtype(xp, dtype, t.dtype)
    return dtype


def _public_jvp(name: str, x, k, dx, dk, mode, boundary, fillvalue, stride, dilation, method, padding):
    """``corr2d_jvp`` (``name`` "corr2d") or ``conv2d_jvp``: parse, check, then two correlations."""
    options = Options.parse(
        mode=mode, boundary=boundary, fillvalue=fillvalue, stride=stride, dilation=dilation,
        convolve=name == "conv2d", method=method, padding=padding,
    )
    xp = check_arrays(x, k)
    geometry = plan(x.shape, k.shape, options)  # the shape checks of the forward call
    # The forward call's fillvalue check: dx's term runs with the fill's linear part (0), and
    # would let a fillvalue that corr2d refuses through where dk is None.
    check_integral_fill(xp, result_dtype(xp, x.dtype, k.dtype), options.fillvalue)
    if dx is None and dk is None:
        msg = f"{name}_jvp needs a direction: dx, dk or both (got None for both)"
        raise ValueError(msg)
    if dx is not None:
        _check_tangent("dx", dx, x, "x")
    if dk is not None:
        _check_tangent("dk", dk, k, "k")
    dtype = _tangent_dtype(xp, x, k, dx, dk)
    x, k, dx, dk = _in_tangent_dtype(xp, dtype, x, k, dx, dk)
    adapter, terms = adapter_for(xp), []
    if dx is not None:
        terms.append(correlate(adapter, dx, k, tangent_options(options)))
    if dk is not None:
        if terms and _add_in_bands(xp, adapter, terms[0], x, dk, options, geometry, dtype):
            return terms[0]
        terms.append(correlate(adapter, x, dk, options))
    return _sum(xp, terms, dtype)


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
    return _public_jvp("corr2d", x, k, dx, dk, mode, boundary, fillvalue, stride, dilation, method, padding)


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
    return _public_jvp("conv2d", x, k, dx, dk, mode, boundary, fillvalue, stride, dilation, method, padding)


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
    options = Options.parse(
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        stride=stride,
        dilation=dilation,
        method=method,
        padding=padding,
    )
    groups = parse_int("groups", groups)
    parse_data_format(data_format)
    last = data_format == "channels_last"
    if last:
        check_last(x, w)  # named before the permutation of a 2-D x fails inside the library
    xp, geometry = check_multi(to_first(array_namespace(x, w), x) if last else x, w, options, groups)
    if dx is None and dw is None:
        msg = "corr2d_multi_jvp needs a direction: dx, dw or both (got None for both)"
        raise ValueError(msg)
    if dx is not None:
        _check_tangent("dx", dx, x, "x")
    if dw is not None:
        _check_tangent("dw", dw, w, "w")
    dtype = _tangent_dtype(xp, x, w, dx, dw)
    x, w, dx, dw = _in_tangent_dtype(xp, dtype, x, w, dx, dw)
    terms = []
    if last:  # through the public call, which computes channels-last natively
        def forward(a, b, fill):
            return corr2d_multi(
                a, b, mode=mode, boundary=boundary, fillvalue=fill, stride=stride, dilation=dilation,
                groups=groups, method=method, padding=padding, data_format=data_format,
            )

        if dx is not None:
            terms.append(forward(dx, w, tangent_options(options).fillvalue))
        if dw is not None:
            terms.append(forward(x, dw, fillvalue))
        return _sum(xp, terms, dtype)
    if dx is not None:
        terms.append(correlate_multi(xp, dx, w, tangent_options(options), geometry, groups))
    if dw is not None:
        terms.append(correlate_multi(xp, x, dw, options, geometry, groups))
    return _sum(xp, terms, dtype)
