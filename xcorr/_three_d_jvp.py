"""Forward-mode derivatives of the 3-D functions. The correlation is bilinear in ``(x, k)``, so the
tangent in the direction ``(dx, dk)`` is ``corr3d(dx, k) + corr3d(x, dk)``: two 3-D forward calls
(one where a direction is None), each a sum of 2-D calls over the depth taps. A non-zero fill is a
constant with no tangent: the ``dx`` term extends ``dx`` with zeros. The arguments are checked
first in 3-D terms, by the forward call's checks and the directions'."""

from __future__ import annotations

from ._call import OPTIONS, check_directions
from ._options import result_dtype
from ._three_d import Padding3D, Triple, _boundary, _half_fill, conv3d, corr3d, corr3d_multi, widened
from ._three_d_checks import check, check_multi
from ._typing import Array, Boundary, DataFormat, Method, Mode, Scalar

__all__ = ["conv3d_jvp", "corr3d_jvp", "corr3d_multi_jvp"]

def _tangent(xp, forward, given: dict, k_name: str, options: dict):
    """``forward(dx, k) + forward(x, dk)`` in the promoted dtype of the four arrays (the terms of
    None directions left out); the ``dx`` term with the fill's linear part, 0."""
    x, k, dx, dk = given["x"], given[k_name], given["dx"], given["d" + k_name]
    dtype = result_dtype(xp, x.dtype, k.dtype)
    for t in (dx, dk):
        if t is not None:
            dtype = result_dtype(xp, dtype, t.dtype)
    (options,) = _half_fill(xp, dtype, options)
    x, k, dx, dk = widened(xp, dtype, *(None if a is None else xp.astype(a, dtype, copy=False) for a in (x, k, dx, dk)))
    linear = {**options, "fillvalue": 0} if _boundary(options) == "fill" else options
    total = None if dx is None else forward(dx, k, **linear)
    if dk is not None:
        term = forward(x, dk, **options)
        total = term if total is None else total + term
    return xp.astype(total, dtype, copy=False)


def _jvp3(op: str, forward, given: dict):
    options = {name: given[name] for name in OPTIONS}
    xp, *_ = check(given["x"], given["k"], None, options)
    check_directions(op, given, "k")
    return _tangent(xp, forward, given, "k", options)


def corr3d_jvp(
    x: Array,
    k: Array,
    dx: Array | None,
    dk: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Triple = 1,
    dilation: Triple = 1,
    method: Method = "auto",
    padding: Padding3D = None,
) -> Array:
    return _jvp3("corr3d", corr3d, locals())


def conv3d_jvp(
    x: Array,
    k: Array,
    dx: Array | None,
    dk: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Triple = 1,
    dilation: Triple = 1,
    method: Method = "auto",
    padding: Padding3D = None,
) -> Array:
    return _jvp3("conv3d", conv3d, locals())


_JVP_DOC = """Forward-mode derivative of ``{name}(x, k, **options)`` in the direction ``(dx, dk)``.

    The tangent ``{name}(dx, k) + {name}(x, dk)`` (one term where a direction is None), with the
    linear part of a non-zero fill for ``dx`` (the fill is a constant: ``dx`` is extended with
    zeros): what ``jax.jvp`` and torch's forward AD give through ``xcorr.{name}``. Each term is one
    ``xcorr.{name}`` call, a sum of 2-D calls over the depth taps.

    Parameters
    ----------
    x : array, shape (..., D, H, W)
        The volume(s) of the forward call.
    k : array, shape (kd, kh, kw) or (..., kd, kh, kw)
        The kernel(s) of the forward call.
    dx : array of the shape of ``x``, or None
        The direction for ``x`` (None: zero).
    dk : array of the shape of ``k``, or None
        The direction for ``k`` (None: zero); not both None.
    mode : {{"valid", "same", "full"}}, default "valid"
        The forward call's mode.
    boundary : str, default "fill"
        The forward call's boundary.
    fillvalue : scalar, default 0
        The forward call's fill value (a constant: it has no tangent).
    stride : int or (int, int, int), default 1
        The forward call's stride.
    dilation : int or (int, int, int), default 1
        The forward call's dilation.
    method : {{"auto", "direct", "fft", "native"}}, default "auto"
        How both terms are computed.
    padding : int, 3 ints or (before, after) pairs, "SAME", "VALID" or "SAME_LOWER", optional
        The forward call's padding.

    Returns
    -------
    array, the shape of ``{name}(x, k, **options)``
        In the promoted dtype of the four arrays.

    Raises
    ------
    TypeError, ValueError
        As ``xcorr.{name}``, in 3-D terms, and ValueError when ``dx``/``dk`` do not have the
        shapes of ``x``/``k`` or both are None; all before any computation.

    Examples
    --------
    The correlation is linear in the kernel: the derivative in the direction ``dk`` alone is the
    correlation with ``dk``.

    >>> import numpy as np
    >>> import xcorr
    >>> x, k = np.arange(8.0).reshape(2, 2, 2), np.ones((2, 1, 1))
    >>> dk = np.zeros((2, 1, 1))
    >>> dk[0] = 1.0
    >>> xcorr.{name}_jvp(x, k, None, dk).tolist()
    {example}
    """

corr3d_jvp.__doc__ = _JVP_DOC.format(name="corr3d", example="[[[0.0, 1.0], [2.0, 3.0]]]")
conv3d_jvp.__doc__ = _JVP_DOC.format(name="conv3d", example="[[[4.0, 5.0], [6.0, 7.0]]]")


def corr3d_multi_jvp(
    x: Array,
    w: Array,
    dx: Array | None,
    dw: Array | None,
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
) -> Array:
    """Forward-mode derivative of ``corr3d_multi(x, w, **options)`` in the direction ``(dx, dw)``.

    The tangent ``corr3d_multi(dx, w) + corr3d_multi(x, dw)`` (one term where a direction is None;
    no bias, a constant), with the fill's linear part for ``dx`` as ``corr3d_jvp``: what torch's
    forward AD of ``F.conv3d`` gives.

    Parameters
    ----------
    x : array, shape (N, C_in, D, H, W) or (C_in, D, H, W)
        The input of the forward call; ``(N, D, H, W, C_in)`` or ``(D, H, W, C_in)`` channels-last.
    w : array, shape (C_out, C_in // groups, kd, kh, kw)
        The filters of the forward call.
    dx : array of the shape of ``x``, or None
        The direction for ``x`` (None: zero).
    dw : array of the shape of ``w``, or None
        The direction for ``w`` (None: zero); not both None.
    mode : {"valid", "same", "full"}, default "valid"
        The forward call's mode.
    boundary : str, default "fill"
        The forward call's boundary.
    fillvalue : scalar, default 0
        The forward call's fill value (a constant: it has no tangent).
    stride : int or (int, int, int), default 1
        The forward call's stride.
    dilation : int or (int, int, int), default 1
        The forward call's dilation.
    groups : int, default 1
        The forward call's groups.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How both terms are computed.
    padding : int, 3 ints or (before, after) pairs, "SAME", "VALID" or "SAME_LOWER", optional
        The forward call's padding.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        The layout of ``x``, ``dx`` and the result.

    Returns
    -------
    array, the shape of ``corr3d_multi(x, w, **options)``
        In the promoted dtype of the four arrays.

    Raises
    ------
    TypeError, ValueError
        As ``xcorr.corr3d_multi``, and ValueError when ``dx``/``dw`` do not have the shapes of
        ``x``/``w`` or both are None.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.ones((1, 2, 2, 2, 2)), np.ones((1, 2, 2, 2, 2))
    >>> xcorr.corr3d_multi_jvp(x, w, np.ones_like(x), None).ravel().tolist()
    [16.0]
    """
    given = locals()
    options = {name: given[name] for name in OPTIONS}
    xp, *_ = check_multi(x, w, None, None, groups, data_format, options)
    check_directions("corr3d_multi", given, "w")
    return _tangent(xp, corr3d_multi, given, "w", {**options, "groups": groups, "data_format": data_format})
