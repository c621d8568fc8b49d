"""Public 3-D cross-correlation and convolution: thin fronts over the 2-D functions, summed over
the kernel's depth taps.

For ``x`` of shape ``(..., D, H, W)`` and ``k`` of shape ``(..., kd, kh, kw)`` the depth axis is
extended first (``xcorr._direct.extend_axis``: the boundaries of the 2-D functions, as slices,
flips and fill blocks), then depth tap ``j`` reads the strided slice
``xe[..., j*d : j*d + s*(D'-1) + 1 : s, :, :]``, whose ``D'`` output depths ride along as a batch
axis of one 2-D call with ``k[..., j:j+1, :, :]``; the 2-D results are summed over ``j``. Every
mode is turned into explicit padding on all three axes (scipy.signal's N-d centring of "same"),
which the 2-D call takes for the height and width (the VJPs: ``xcorr._three_d_vjp``). A large
single-channel kernel is one FFT of the whole volume instead (``_whole_fft``). The arguments are
checked here first, in 3-D terms.
"""

from __future__ import annotations

import math

from . import _fft
from ._call import OPTIONS, parse_options, public_front, public_key
from ._compat import device
from ._composite import native_front, takes_native
from ._correlate import corr2d
from ._cost_model import concrete_method, dtype_kind
from ._direct import extend_axis, window, zero_insert
from ._fronts import front_doc
from ._multi import corr2d_multi
from ._options import AxisPlan, Geometry, Options, result_dtype
from ._prepared import _PREPARED, fft_allowed, half_precision, half_value, in_wide, remember
from ._registry import adapter_for
from ._three_d_checks import check, check_multi
from ._typing import Array, Boundary, DataFormat, Method, Mode, Scalar

__all__ = ["conv3d", "corr3d", "corr3d_multi"]

#: A 3-D ``padding=``: an int for every side, one int or ``(before, after)`` per axis, a name of lax's, or None.
Padding3D = int | tuple | list | str | None
#: A 3-D stride or dilation: an int or a sequence of three (depth, height, width).
Triple = int | tuple[int, int, int] | list[int]

# -- the depth taps ---------------------------------------------------------------------------


def _depth(axis: int, index) -> tuple:
    """The index of ``index`` along the depth axis ``axis`` (negative), every later axis whole."""
    return (Ellipsis, index, *(slice(None),) * (-axis - 1))


def _extended(xp, x, dtype, plan: AxisPlan, given: dict, axis: int):
    """``x`` in the result's dtype, extended along its depth axis to the positions the taps read."""
    x = xp.astype(x, dtype, copy=False)
    return extend_axis(xp, x, axis, plan.lo, plan.hi, _boundary(given), given["fillvalue"])


def _boundary(given: dict) -> str:
    """The boundary's canonical name (its aliases resolved)."""
    return parse_options({"boundary": given["boundary"]}).boundary


def on_depths(xp, a, axis: int, step: int, before: int, extent: int):
    """``a`` zero-inserted by ``step`` along ``axis`` (one position per depth it covers) and placed
    ``before`` positions into ``extent`` positions of zeros: where a depth tap's planes belong."""
    spread = zero_insert(xp, a, axis, step)
    pieces = []
    for n, piece in ((before, None), (spread.shape[axis], spread), (extent - before - spread.shape[axis], None)):
        if piece is None and n:
            shape = list(a.shape)
            shape[axis] = n
            piece = xp.zeros(tuple(shape), dtype=a.dtype, device=device(a))
        if piece is not None:
            pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else xp.concat(pieces, axis=axis)


def _depth_tap(k, j: int):
    """Depth tap ``j`` of ``k`` as the kernel of a 2-D call: a plain 2-D kernel where ``k`` has no
    batch axes (the form the libraries' compiled 2-D paths take), else ``(..., 1, h, w)``, which
    broadcasts against the depths of the input's window."""
    return k[j, :, :] if k.ndim == 3 else k[..., j : j + 1, :, :]


def _correlate(xp, x, k, plan: AxisPlan, given: dict, keywords: dict):
    xe = _extended(xp, x, result_dtype(xp, x.dtype, k.dtype), plan, given, -3)
    total = None
    for j in range(plan.taps):
        term = corr2d(xe[_depth(-3, window(plan, j))], _depth_tap(k, j), **keywords)
        total = term if total is None else total + term
    return total


def widened(xp, dtype, *arrays):
    """Half-precision operands in float32, so that the depth taps' sum is rounded to ``dtype`` once
    (:func:`rounded`), as the 2-D functions round (``xcorr._prepared.Widened``); others as given."""
    if not half_precision(dtype):
        return arrays
    return in_wide(xp, dtype, *arrays)


def rounded(xp, y, dtype):
    """The result of :func:`widened` operands in ``dtype``."""
    return xp.astype(y, dtype, copy=False) if half_precision(dtype) else y


def _half_fill(xp, dtype, *dicts: dict) -> tuple[dict, ...]:
    """Option dicts whose fill value is the one the half dtype ``dtype`` holds (for a float32 computation)."""
    if not half_precision(dtype):
        return dicts
    return tuple({**d, "fillvalue": half_value(xp, dtype, d["fillvalue"])} for d in dicts)


def _whole_fft(adapter, xp, x, k, dtype, options: Options, geometry: Geometry) -> str | None:
    """Whether ``corr3d`` is one FFT of the whole volume (``_fft.correlate`` over three axes) rather
    than the depth taps' 2-D calls: "fft" where asked for, "auto" where ``method="auto"``'s cost
    model picks it over the 3-D geometry (then only for finite values: a NaN or inf would spread over
    the whole result), None otherwise. Only on eager libraries: lazy chunks transform block by block,
    and traced arrays choose inside the program, in the 2-D calls."""
    kind = dtype_kind(xp, dtype)
    if not adapter.eager or kind not in ("real floating", "complex floating") or options.method not in ("auto", "fft"):
        return None
    if options.method == "fft":
        return "fft"
    return "auto" if concrete_method(adapter, "auto", kind, x.shape, k.shape, geometry) == "fft" else None


def _flip(xp, k):
    return xp.flip(k, axis=(-3, -2, -1))


# -- the public fronts ------------------------------------------------------------------------


def _front(op: str, x, k, given: tuple):
    """``corr3d`` or ``conv3d`` of ``x``, ``k`` and the option values ``given`` (in the order of
    ``xcorr._call.OPTIONS``): the prepared call of this signature (kept beside the 2-D ones, and
    forgotten with them), else check and prepare it."""
    key = None
    try:
        key = public_key(op, x, k, given)
        call = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):  # not prepared, or not arrays (the checks name them)
        options = dict(zip(OPTIONS, given))
        xp, geometry, keywords, parsed = check(x, k, None, options)
        flip, dtype, plan = op == "conv3d", result_dtype(xp, x.dtype, k.dtype), geometry.axes[0]
        adapter = adapter_for(xp)
        whole = _whole_fft(adapter, xp, x, k, dtype, parsed, geometry)
        options, keywords = _half_fill(xp, dtype, options, keywords)

        def call(x, k):
            k = _flip(xp, k) if flip else k
            if whole == "fft" or (whole == "auto" and fft_allowed(adapter, xp, x, k)):
                return _fft.correlate(xp, x, k, parsed, geometry)
            if adapter.volumes:
                return adapter.correlate_volume(xp, x, k, parsed, geometry)
            x, k = widened(xp, dtype, x, k)
            return rounded(xp, _correlate(xp, x, k, plan, options, keywords), dtype)

        remember(key, call)
    return call(x, k)


def corr3d(
    x: Array,
    k: Array,
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
    return _front("corr3d", x, k, (mode, boundary, fillvalue, stride, dilation, method, padding))


def conv3d(
    x: Array,
    k: Array,
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
    return _front("conv3d", x, k, (mode, boundary, fillvalue, stride, dilation, method, padding))


def _reshaped(xp, a, shape: tuple):
    """``xp.reshape(a, shape)``, except that an empty result is made as zeros: dask cannot reshape an
    empty array across chunked axes (an empty batch)."""
    if math.prod(shape) == 0:
        return xp.zeros(shape, dtype=a.dtype, device=device(a))
    return xp.reshape(a, shape)


def _planes(xp, a, plan: AxisPlan, tap: int | None, last: bool):
    """Tap ``tap``'s depth slice of the extended ``(N, C, D, H, W)`` (or channels-last) ``a`` as a
    batch of 2-D images ``(N*D', C, H, W)``; with ``tap`` None, ``a`` is an output gradient."""
    if tap is not None:
        a = a[_depth(-4 if last else -3, window(plan, tap))]
    if not last:
        a = xp.permute_dims(a, (0, 2, 1, 3, 4))
    return _reshaped(xp, a, (a.shape[0] * a.shape[1], *a.shape[2:]))


def _volumes(xp, a, n: int, depth: int, last: bool):
    """The inverse of :func:`_planes`: ``(N*D', ...)`` back to ``(N, C, D', H, W)`` (or channels-last),
    ``depth`` being ``D'`` (which an empty batch, ``N = 0``, does not tell)."""
    a = _reshaped(xp, a, (n, depth, *a.shape[1:]))
    return a if last else xp.permute_dims(a, (0, 2, 1, 3, 4))


def corr3d_multi(
    x: Array,
    w: Array,
    /,
    *,
    bias: Array | None = None,
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
    given = (mode, boundary, fillvalue, stride, dilation, method, padding)
    return public_front("corr3d_multi", _prepare_multi, x, w, bias, groups, data_format, given)


def _prepare_multi(x, w, bias, groups, data_format, given: tuple):
    """``(adapter, run)`` of a checked ``corr3d_multi`` call: the library's own 3-D convolution
    where it has one, else ``corr2d_multi`` per depth tap on the output depths laid along the batch."""
    options = dict(zip(OPTIONS, given))
    xp, last, plans, keywords, parsed = check_multi(x, w, None, bias, groups, data_format, options, every_axis=True)
    single, plan, dtype, adapter = x.ndim == 4, plans[0], result_dtype(xp, x.dtype, w.dtype), adapter_for(xp)
    if takes_native(adapter, xp, 3, parsed.method, dtype, w, keywords["groups"]):

        return adapter, native_front(adapter, xp, x, w, bias, dtype, plans, keywords["groups"], last, parsed)
    options, keywords = _half_fill(xp, dtype, options, keywords)

    def taps(x, w, bias):
        xb = xp.expand_dims(x, axis=0) if single else x
        xb, w, bias = widened(xp, dtype, xb, w, bias)
        xe = _extended(xp, xb, result_dtype(xp, xb.dtype, w.dtype), plan, options, -4 if last else -3)
        total = None
        for j in range(plan.taps):
            term = corr2d_multi(_planes(xp, xe, plan, j, last), w[:, :, j, :, :], bias=None if j else bias, **keywords)
            total = term if total is None else total + term
        y = rounded(xp, _volumes(xp, total, xb.shape[0], plan.count, last), dtype)
        return y[0, ...] if single else y

    return adapter, taps


# -- docstrings ---------------------------------------------------------------------------------

_DESIGN = """A thin front of the 2-D function, a sum over the kernel's depth taps: the depth axis of
    ``x`` is extended (with ``boundary``), tap ``j`` reads its strided depth slice, whose output
    depths ride along as a batch axis of one 2-D call with ``k[..., j, :, :]``, so every backend,
    method, boundary and fast path of the 2-D function serves the height and width."""

_OPTIONS_DOC = """\
    mode : {{"valid", "same", "full"}}, default "valid"
        Output size per axis, as in :func:`scipy.signal.{counterpart}` of 3-D arrays: "valid" keeps
        the windows inside ``x`` (``D - kd' + 1``), "same" is centred and as large as ``x`` (scipy's
        N-d centring, ``kd' // 2`` before: for an even ``kh'`` or ``kw'`` the correlation's window
        is one element before ``xcorr.corr2d``'s, which follows ``scipy.signal.correlate2d``),
        "full" is every overlap (``D + kd' - 1``); primes mark the dilated kernel's extent.
    boundary : {{"fill", "wrap", "symm", "reflect", "edge"}}, default "fill"
        How ``x`` is extended beyond its faces along all three axes (in "same" and "full" modes,
        and by ``padding``), with ``xcorr.corr2d``'s names, aliases and rules ("reflect" cannot
        extend an axis of length 1).
    fillvalue : scalar, default 0
        Value outside ``x`` for ``boundary="fill"``.
    stride : int or (int, int, int), default 1
        Keep every ``s``-th output of the dense result along each axis, starting at index 0
        (``dense[..., ::sd, ::sh, ::sw]``).
    dilation : int or (int, int, int), default 1
        Spacing between kernel taps along (depth, height, width).
    method : {{"auto", "direct", "fft", "native"}}, default "auto"
        How each 2-D call computes its planes, as in ``xcorr.corr2d``; for ``corr3d``, ``conv3d``
        and their VJPs on eager libraries (not jax, not dask), "fft", or "auto" where the cost model
        picks it for finite values, is one FFT of the whole volume instead. Every method gives the
        same result within float rounding.
    padding : int, 3 ints or (before, after) pairs, "SAME", "VALID" or "SAME_LOWER", optional
        Extend ``x`` (with ``boundary``) by this many elements on every side, or per axis
        (depth, height, width) by an int or a ``(before, after)`` pair, and take the "valid"
        correlation of the result (:func:`torch.nn.functional.conv3d`'s ``padding``); "SAME" is lax's
        and Keras' (``ceil(n / s)`` outputs per axis, the odd element after; "SAME_LOWER": before),
        "VALID" none; names in any case. Only with ``mode="valid"``."""

_SIGNALS_DOC = """\
    x : array, shape (..., D, H, W)
        Input volume(s) of any array-API library; leading dimensions are batch dimensions.
    k : array, shape (kd, kh, kw) or (..., kd, kh, kw)
        Kernel(s) from the same library and device as ``x``; its leading dimensions broadcast
        against those of ``x``."""

_RAISES_DOC = """\
    TypeError
        As ``xcorr.corr2d``: non-arrays, bool arrays, arrays of two libraries.
    ValueError
        An ``x`` or ``k`` of fewer than 3 dimensions, an empty one, a (dilated) kernel larger
        than ``x`` along an axis in "valid" mode (or than the padded ``x``), batch shapes that do
        not broadcast, a ``stride`` or ``dilation`` that is not an int or 3 ints >= 1, a ``padding``
        that is not an int, 3 per-axis paddings or a name{extra}, and every option
        ``xcorr.corr2d`` refuses; all before any computation."""


def _doc(title: str, formula: str, body: str, returns: str, *, counterpart: str = "correlate") -> str:
    return front_doc(title, formula, _DESIGN, body, _OPTIONS_DOC.format(counterpart=counterpart), returns)


corr3d.__doc__ = _doc(
    "3-D cross-correlation of the last three axes, on any array-API backend.",
    "``y[..., i, j, l] = sum_{a, b, c} x[..., i*sd + a*dd, j*sh + b*dh, l*sw + c*dw] * k[..., a, b, c]``\n"
    '    (in "valid" mode), the correlation of :func:`torch.nn.functional.conv3d` (no conjugation);\n'
    "    :func:`scipy.signal.correlate` of real 3-D arrays.",
    _SIGNALS_DOC,
    f"""    array, shape (..., D', H', W')
        Same library and device as the inputs; the dtype is the promotion of the two, as in
        ``xcorr.corr2d``.

    Raises
    ------
{_RAISES_DOC.format(extra="")}

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x = xp.reshape(xp.arange(27), (3, 3, 3))
    >>> xcorr.corr3d(x, xp.ones((2, 2, 2), dtype=xp.int64))
    Array([[[ 52,  60],
            [ 76,  84]],
    <BLANKLINE>
           [[124, 132],
            [148, 156]]], dtype=array_api_strict.int64)
    """,
)

conv3d.__doc__ = _doc(
    "3-D convolution of the last three axes, on any array-API backend.",
    "``y[..., i, j, l] = sum_{a, b, c} x[..., i - a, j - b, l - c] * k[..., a, b, c]``, the kernel\n"
    "    flipped on all three axes, matching :func:`scipy.signal.convolve` of 3-D arrays in every mode.",
    _SIGNALS_DOC,
    f"""    array, shape (..., D', H', W')
        Same library and device as the inputs; the dtype is the promotion of the two.

    Raises
    ------
{_RAISES_DOC.format(extra="")}

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> k = np.zeros((2, 1, 1))
    >>> k[1] = 1.0
    >>> xcorr.conv3d(np.arange(8.0).reshape(2, 2, 2), k, mode="full")[..., 0, 0].tolist()
    [0.0, 0.0, 4.0]
    """,
    counterpart="convolve",
)

_MULTI_DOC = """\
    x : array, shape (N, C_in, D, H, W) or (C_in, D, H, W)
        Input volumes of any array-API library (``(N, D, H, W, C_in)`` or ``(D, H, W, C_in)``
        channels-last).
    w : array, shape (C_out, C_in // groups, kd, kh, kw)
        Filters, from the same library and device as ``x``, in :func:`torch.nn.functional.conv3d`'s layout.
{extra}    groups : int, default 1
        Split the channels into ``groups`` independent groups; it must divide ``C_in`` and ``C_out``.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        ``x``{g} and the result as ``(N, C, D, H, W)`` or as ``(N, D, H, W, C)``; ``w`` keeps its layout."""

corr3d_multi.__doc__ = _doc(
    "Multi-channel 3-D cross-correlation, the forward pass of a 3-D convolutional layer.",
    "``y[n, o, i, j, l] = sum_{c, a, b, e} x[n, g*Cg + c, i*sd + a*dd, j*sh + b*dh, l*sw + e*dw] * w[o, c, a, b, e]``\n"
    '    ("valid" mode) plus ``bias[o]``: :func:`torch.nn.functional.conv3d` ``(x, w, bias, groups=groups)``,\n'
    "    extended to every mode, boundary and padding of ``corr3d``; ``xcorr.corr2d_multi`` computes\n"
    "    each depth tap on the output depths laid along the batch.",
    _MULTI_DOC.format(
        g="",
        extra="    bias : array, shape (C_out,), optional\n"
        "        Added once to every position of each output channel; its dtype must promote to the output's.\n",
    ),
    """    array, shape (N, C_out, D', H', W') or (C_out, D', H', W')
        Same library and device as the inputs (``(N, D', H', W', C_out)`` channels-last).

    Raises
    ------
    TypeError, ValueError
        As ``corr3d``; also ValueError for ``x`` not 4-D or 5-D, ``w`` not 5-D, channel counts
        that ``groups`` does not divide or that ``w`` does not match, or ``bias`` not of shape
        ``(C_out,)``.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.ones((1, 2, 3, 3, 3)), np.ones((2, 2, 2, 2, 2))
    >>> y = xcorr.corr3d_multi(x, w, bias=np.asarray([0.0, 1.0]))
    >>> y.shape, y[0, :, 0, 0, 0].tolist()
    ((1, 2, 2, 2, 2), [16.0, 17.0])
    """,
)
