"""Public 3-D VJPs: the 2-D VJPs summed over the kernel's depth taps.

Depth tap ``j`` of ``corr3d`` read the strided depth slice of the extended ``x`` (``xcorr._three_d``);
its 2-D VJP's ``gx`` is put back on those depth positions (zero insertion for the stride) and
summed over the taps, the boundary's extension folded back onto ``x`` (``fold_axis``); the kernel
gradients are stacked per tap. A large single-channel kernel takes both gradients from one FFT of
the whole volume instead (``_fft.vjp`` over three axes). Each signature is checked once, in 3-D
terms, the output gradient's included.
"""

from __future__ import annotations

from functools import partial

from . import _fft
from ._call import OPTIONS, public_front
from ._composite import fft_vjp_applies
from ._direct import as_input_dtype, fold_axis, window
from ._multi import corr2d_multi_vjp
from ._options import AxisPlan, result_dtype
from ._registry import adapter_for
from ._three_d import (
    _MULTI_DOC,
    _RAISES_DOC,
    _SIGNALS_DOC,
    Padding3D,
    Triple,
    _boundary,
    _depth,
    _depth_tap,
    _doc,
    _extended,
    _flip,
    _half_fill,
    _planes,
    _volumes,
    on_depths,
    rounded,
    widened,
)
from ._three_d_checks import check, check_multi
from ._typing import Array, Boundary, DataFormat, Method, Mode, Scalar
from ._vjp import corr2d_vjp

__all__ = ["conv3d_vjp", "corr3d_multi_vjp", "corr3d_vjp"]


def _placed(xp, gx, plan: AxisPlan, tap: int, axis: int):
    """The gradient ``gx`` of tap ``tap``'s depth slice, put back on the extended depth positions."""
    return on_depths(xp, gx, axis, plan.step, tap * plan.dilation, plan.hi - plan.lo + 1)


def _vjp(xp, x, k, g, plan: AxisPlan, given: dict, keywords: dict):
    xe = _extended(xp, x, result_dtype(xp, x.dtype, k.dtype), plan, given, -3)
    total, gks = None, []
    for j in range(plan.taps):
        gx, gk = corr2d_vjp(xe[_depth(-3, window(plan, j))], _depth_tap(k, j), g, **keywords)
        placed = _placed(xp, gx, plan, j, -3)
        total = placed if total is None else total + placed
        gks.append(gk if gk.ndim == k.ndim else xp.expand_dims(gk, axis=0))
    gx = fold_axis(xp, total, -3, plan.lo, plan.hi, x.shape[-3], _boundary(given))
    return gx, xp.concat(gks, axis=-3)


def _vjp3(op: str, x, k, g, given: tuple):
    """``corr3d_vjp`` (``op`` "corr3d") or ``conv3d_vjp`` of the options' values ``given``, checked
    once per signature (the output gradient's included)."""
    return public_front(f"{op}_vjp", partial(_prepare_vjp3, op), x, k, g, None, None, given)


def _prepare_vjp3(op: str, x, k, g, groups, data_format, given: tuple):
    options = dict(zip(OPTIONS, given))
    xp, geometry, keywords, parsed = check(x, k, g, options)
    flip, dtype, adapter = op == "conv3d", result_dtype(xp, x.dtype, k.dtype, g.dtype), adapter_for(xp)
    wide, keywords = _half_fill(xp, dtype, options, keywords)

    def run(x, k, g):
        operands, k = (x, k), _flip(xp, k) if flip else k
        if fft_vjp_applies(adapter, xp, x, k, g, parsed, geometry, dtype):  # both from one spectrum of g
            gx, gk = _fft.vjp(xp, x, k, g, parsed, geometry, True, True)
        else:
            gx, gk = _vjp(xp, *widened(xp, dtype, x, k, g), geometry.axes[0], wide, keywords)
        gx, gk = rounded(xp, gx, dtype), rounded(xp, _flip(xp, gk) if flip else gk, dtype)
        return tuple(as_input_dtype(xp, grad, a) for grad, a in zip((gx, gk), operands))  # as the 2-D VJPs

    return adapter, run


def corr3d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Triple = 1,
    dilation: Triple = 1,
    method: Method = "auto",
    padding: Padding3D = None,
) -> tuple[Array, Array]:
    return _vjp3("corr3d", x, k, g, (mode, boundary, fillvalue, stride, dilation, method, padding))


def conv3d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Triple = 1,
    dilation: Triple = 1,
    method: Method = "auto",
    padding: Padding3D = None,
) -> tuple[Array, Array]:
    return _vjp3("conv3d", x, k, g, (mode, boundary, fillvalue, stride, dilation, method, padding))


def corr3d_multi_vjp(
    x: Array,
    w: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Triple = 1,
    dilation: Triple = 1,
    groups: int = 1,
    method: Method = "auto",
    padding: Padding3D = None,
    data_format: DataFormat = "channels_first",
) -> tuple[Array, Array]:
    given = (mode, boundary, fillvalue, stride, dilation, method, padding)
    return public_front("corr3d_multi_vjp", _prepare_multi_vjp, x, w, g, groups, data_format, given)


def _prepare_multi_vjp(x, w, g, groups, data_format, given: tuple):
    """``(adapter, run)`` of a checked ``corr3d_multi_vjp`` call: ``corr2d_multi_vjp`` per depth tap,
    the input gradients placed on the depths each tap read."""
    options = dict(zip(OPTIONS, given))
    xp, last, plan, keywords, _ = check_multi(x, w, g, None, groups, data_format, options)
    single, axis, dtype = x.ndim == 4, -4 if last else -3, result_dtype(xp, x.dtype, w.dtype, g.dtype)
    options, keywords = _half_fill(xp, dtype, options, keywords)

    def run(x, w, g):
        operands = (x, w)
        x, w, g = widened(xp, dtype, x, w, g)
        xb, gb = (xp.expand_dims(a, axis=0) if single else a for a in (x, g))
        xe = _extended(xp, xb, result_dtype(xp, x.dtype, w.dtype), plan, options, axis)
        g2 = _planes(xp, gb, plan, None, last)
        total, gws = None, []
        for j in range(plan.taps):
            gx, gw = corr2d_multi_vjp(_planes(xp, xe, plan, j, last), w[:, :, j, :, :], g2, **keywords)
            placed = _placed(xp, _volumes(xp, gx, xb.shape[0], plan.count, last), plan, j, axis)
            total = placed if total is None else total + placed
            gws.append(gw)
        gx = rounded(xp, fold_axis(xp, total, axis, plan.lo, plan.hi, xb.shape[axis], _boundary(options)), dtype)
        gx, gw = (gx[0, ...] if single else gx), rounded(xp, xp.stack(gws, axis=2), dtype)
        return as_input_dtype(xp, gx, operands[0]), as_input_dtype(xp, gw, operands[1])  # as the 2-D VJPs

    return adapter_for(xp), run


# -- docstrings ---------------------------------------------------------------------------------

_VJP_RETURNS = """\
    gx : array, shape of ``x``
        Gradient with respect to ``x``, summed over the batch dimensions ``x`` was broadcast along.
    gk : array, shape of ``k``
        Gradient with respect to ``k``, summed over the batch dimensions ``k`` was broadcast along.

    Raises
    ------
{raises}

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, k = np.arange(8.0).reshape(2, 2, 2), np.ones((1, 1, 2))
    >>> gx, gk = xcorr.{name}_vjp(x, k, np.ones((2, 2, 1)))
    >>> gx.tolist()
    [[[1.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]]
    >>> gk.tolist()
    [[[{gk}]]]
    """

for _f, _name, _gk, _counterpart in (
    (corr3d_vjp, "corr3d", "12.0, 16.0", "correlate"),
    (conv3d_vjp, "conv3d", "16.0, 12.0", "convolve"),
):
    _f.__doc__ = _doc(
        f"Gradients ``(gx, gk)`` of ``{_name}(x, k, **options)`` for an output gradient ``g``.",
        f"The exact vector-Jacobian product (no conjugation, as ``jax.vjp``): ``xcorr.{_name[:-2]}2d_vjp``\n"
        "    per depth tap, its ``gx`` summed back onto the depth positions the tap read.",
        _SIGNALS_DOC + f"\n    g : array, shape of ``{_name}(x, k, **options)``\n"
        "        Gradient of a scalar loss with respect to the output.",
        _VJP_RETURNS.format(
            name=_name, gk=_gk, raises=_RAISES_DOC.format(extra=", or a ``g`` not of the output's shape")
        ),
        counterpart=_counterpart,
    )

corr3d_multi_vjp.__doc__ = _doc(
    "Gradients ``(gx, gw)`` of ``corr3d_multi(x, w, **options)`` for an output gradient ``g``.",
    "The exact vector-Jacobian product: ``xcorr.corr2d_multi_vjp`` per depth tap.",
    _MULTI_DOC.format(
        g=", ``g`` and ``gx``",
        extra="    g : array, shape of ``corr3d_multi(x, w, **options)``\n"
        "        Gradient of a scalar loss with respect to the output.\n",
    ),
    """    gx : array, shape of ``x``
        Gradient with respect to ``x``.
    gw : array, shape of ``w``
        Gradient with respect to ``w``.

    Raises
    ------
    TypeError, ValueError
        As ``corr3d_multi``, and ValueError when ``g`` does not have the output's shape.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.ones((1, 1, 2, 2, 2)), np.ones((1, 1, 1, 1, 2))
    >>> gx, gw = xcorr.corr3d_multi_vjp(x, w, np.ones((1, 1, 2, 2, 1)))
    >>> gx[0, 0, 0].tolist(), gw.ravel().tolist()
    ([[1.0, 1.0], [1.0, 1.0]], [4.0, 4.0])
    """,
)
