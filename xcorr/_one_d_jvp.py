"""Forward-mode derivatives of the 1-D functions: thin fronts over the 2-D JVPs, as ``_one_d`` is
over the 2-D functions (the signal and kernel as one-row images, the unit row axis squeezed)."""

from __future__ import annotations

from ._call import OPTIONS, check_directions
from ._jvp import conv2d_jvp, corr2d_jvp, corr2d_multi_jvp
from ._one_d import Padding1D, Single, _check, _check_multi, one_row
from ._typing import Array, Boundary, DataFormat, Method, Mode, Scalar

__all__ = ["conv1d_jvp", "corr1d_jvp", "corr1d_multi_jvp"]


def _jvp1(op: str, jvp2, given: dict):
    _, keywords = _check(op, given["x"], given["k"], None, *(given[name] for name in OPTIONS))
    check_directions(op, given, "k")
    row, unrow = one_row(False)
    tangent = jvp2(*(None if a is None else row(a) for a in (given[n] for n in ("x", "k", "dx", "dk"))), **keywords)
    return unrow(tangent)


def corr1d_jvp(
    x: Array,
    k: Array,
    dx: Array | None,
    dk: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Single = 1,
    dilation: Single = 1,
    method: Method = "auto",
    padding: Padding1D = None,
) -> Array:
    return _jvp1("corr1d", corr2d_jvp, locals())


def conv1d_jvp(
    x: Array,
    k: Array,
    dx: Array | None,
    dk: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Single = 1,
    dilation: Single = 1,
    method: Method = "auto",
    padding: Padding1D = None,
) -> Array:
    return _jvp1("conv1d", conv2d_jvp, locals())


_JVP_DOC = """Forward-mode derivative of ``{name}(x, k, **options)`` in the direction ``(dx, dk)``.

    The tangent ``{name}(dx, k) + {name}(x, dk)``, with the linear part of a non-zero fill for
    ``dx`` left out (the fill is a constant): what ``jax.jvp`` and torch's forward AD give
    through ``xcorr.{name}``, computed by ``xcorr.{name2}_jvp`` on one-row signals.

    Parameters
    ----------
    x : array, shape (..., L)
        The signal of the forward call.
    k : array, shape (l,) or (..., l)
        The kernel of the forward call.
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
    stride : int or (int,), default 1
        The forward call's stride.
    dilation : int or (int,), default 1
        The forward call's dilation.
    method : {{"auto", "direct", "fft", "native"}}, default "auto"
        How both terms are computed.
    padding : int, (int, int), "SAME", "VALID" or "SAME_LOWER", optional
        The forward call's padding.

    Returns
    -------
    array, the shape of ``{name}(x, k, **options)``

    Raises
    ------
    TypeError, ValueError
        As ``xcorr.{name}``, and ValueError when ``dx``/``dk`` do not have the shapes of
        ``x``/``k`` or both are None.

    Examples
    --------
    The correlation is linear in the kernel: the derivative in the direction ``dk`` alone is the
    correlation with ``dk``.

    >>> import numpy as np
    >>> import xcorr
    >>> x, k = np.arange(5.0), np.array([1.0, 2.0])
    >>> xcorr.{name}_jvp(x, k, None, np.array([1.0, 0.0])).tolist()
    {example}
    """

corr1d_jvp.__doc__ = _JVP_DOC.format(name="corr1d", name2="corr2d", example="[0.0, 1.0, 2.0, 3.0]")
conv1d_jvp.__doc__ = _JVP_DOC.format(name="conv1d", name2="conv2d", example="[1.0, 2.0, 3.0, 4.0]")


def corr1d_multi_jvp(
    x: Array,
    w: Array,
    dx: Array | None,
    dw: Array | None,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Single = 1,
    dilation: Single = 1,
    groups: int = 1,
    method: Method = "auto",
    padding: Padding1D = None,
    data_format: DataFormat = "channels_first",
) -> Array:
    """Forward-mode derivative of ``corr1d_multi(x, w, **options)`` in the direction ``(dx, dw)``.

    The tangent ``corr1d_multi(dx, w) + corr1d_multi(x, dw)`` (one term where a direction is
    None), computed by ``xcorr.corr2d_multi_jvp`` on one-row signals: what torch's forward AD of
    ``F.conv1d`` gives.

    Parameters
    ----------
    x : array, shape (N, C_in, L) or (C_in, L)
        The input of the forward call; ``(N, L, C_in)`` or ``(L, C_in)`` channels-last.
    w : array, shape (C_out, C_in // groups, l)
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
    stride : int or (int,), default 1
        The forward call's stride.
    dilation : int or (int,), default 1
        The forward call's dilation.
    groups : int, default 1
        The forward call's groups.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How both terms are computed.
    padding : int, (int, int), "SAME", "VALID" or "SAME_LOWER", optional
        The forward call's padding.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        The layout of ``x``, ``dx`` and the result.

    Returns
    -------
    array, the shape of ``corr1d_multi(x, w, **options)``

    Raises
    ------
    TypeError, ValueError
        As ``xcorr.corr1d_multi``, and ValueError when ``dx``/``dw`` do not have the shapes of
        ``x``/``w`` or both are None.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.arange(8.0).reshape(1, 2, 4), np.ones((1, 2, 2))
    >>> xcorr.corr1d_multi_jvp(x, w, np.ones_like(x), None).tolist()
    [[[4.0, 4.0, 4.0]]]
    """
    given = locals()
    options = {name: given[name] for name in OPTIONS}
    _, last, keywords, *_ = _check_multi(x, w, None, None, groups, data_format, options)
    check_directions("corr1d_multi", given, "w")
    row, unrow = one_row(last)
    xr, dxr = (None if a is None else row(a) for a in (x, dx))
    wr, dwr = (None if a is None else a[..., None, :] for a in (w, dw))
    return unrow(corr2d_multi_jvp(xr, wr, dxr, dwr, **keywords))
