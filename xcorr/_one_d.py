"""Public 1-D cross-correlation and convolution: thin fronts over the 2-D functions.

A 1-D signal ``x`` of shape ``(..., L)`` is the one-row image ``x[..., None, :]`` and a kernel
``(..., l)`` the one-row kernel ``k[..., None, :]``; with the row stride and dilation 1 and no row
padding the 2-D correlation of the two is the 1-D correlation with a unit row axis, which is
squeezed. So every backend, method, boundary and fast path of ``corr2d`` serves the 1-D
functions unchanged. The arguments are checked here first, in 1-D terms (a message never names
the one-row shapes the user did not pass); the 2-D call then finds nothing left to refuse but
what its messages already say without a shape (dtypes, libraries, devices, option names).
"""

from __future__ import annotations

from functools import partial

from ._call import OPTIONS, check_bias, check_groups, parse_options, public_front, public_key
from ._composite import native_front, takes_native
from ._correlate import conv2d, corr2d
from ._fronts import check_g, front_doc
from ._layout import parse_data_format
from ._multi import corr2d_multi, corr2d_multi_vjp
from ._options import AxisPlan, broadcast_batch, check_arrays, plan_windows, result_dtype
from ._padding import check_padding_mode, parse_int, parse_padding, parse_per_axis
from ._prepared import _PREPARED, remember
from ._registry import adapter_for
from ._typing import Array, Boundary, DataFormat, Method, Mode, Scalar
from ._vjp import conv2d_vjp, corr2d_vjp

__all__ = ["conv1d", "conv1d_vjp", "corr1d", "corr1d_multi", "corr1d_multi_vjp", "corr1d_vjp"]

#: A 1-D ``padding=``: an int for both sides, ``(left, right)``, a name of lax's, or None.
Padding1D = int | tuple[int, int] | list[int] | str | None
#: A 1-D stride or dilation: an int or a sequence of one.
Single = int | tuple[int] | list[int]


# -- the 1-D arguments, checked and turned into the 2-D ones --------------------------------


def _single(name: str, value: object, minimum: int = 1) -> int:
    """A stride, dilation (or, ``minimum`` 0, output padding): an int or a sequence of exactly one."""
    (number,) = parse_per_axis(name, value, 1, minimum=minimum)
    return number


def _padding(padding: object, mode: object):
    """``(pads, for_2d)``: the 1-D padding as ``(left, right)``, a name ("SAME", "SAME_LOWER") or
    None, and the ``padding=`` of the one-row 2-D call."""
    check_padding_mode(padding, mode)
    parsed = parse_padding(padding, 1)
    if parsed is None or isinstance(parsed, str):
        return parsed, parsed
    (pair,) = parsed
    return pair, ((0, 0), pair)


def _axis(x_shape, k_shape, batch, options, stride: int, dilation: int, pads, *, L=None, k_name="k") -> AxisPlan:
    """The windows (and so the output length) of a 1-D correlation of ``x_shape`` with ``k_shape`` (their last axes;
    ``L``: the signal's length where it is not the last axis of ``x``, which is channels-last), checked by
    ``xcorr._options.plan_windows`` in 1-D terms."""
    L = x_shape[-1] if L is None else L
    padding = pads if pads is None or isinstance(pads, str) else (pads,)
    (axis,) = plan_windows(x_shape, k_shape, (L,), batch, options, (stride,), (dilation,), padding, k_name=k_name)
    return axis


def _check(op: str, x, k, g, mode, boundary, fillvalue, stride, dilation, method, padding):
    """The namespace and the 2-D keywords of a checked 1-D call (``g``: a VJP's output gradient, or None)."""
    xp = check_arrays(x, k)
    for name, a, shape in (("x", x, "(..., L)"), ("k", k, "(l,) or (..., l)")):
        if a.ndim < 1:
            raise ValueError(f"{name} must have at least 1 dimension, shape {shape}; got shape {tuple(a.shape)}")
    s, d = _single("stride", stride), _single("dilation", dilation)
    pads, padding_2d = _padding(padding, mode)
    options = parse_options(
        {"mode": mode, "boundary": boundary, "fillvalue": fillvalue, "method": method}, convolve=op == "conv1d"
    )
    batch = broadcast_batch(x.shape, k.shape, 1)
    pads, padding_2d, mode = _centred(options, k.shape[-1], d, pads, padding_2d, mode)
    out = (*batch, _axis(x.shape, k.shape, batch, options, s, d, pads).count)
    if g is not None:
        check_g(x, g, out)
    keywords = {"mode": mode, "boundary": boundary, "fillvalue": fillvalue, "stride": (1, s), "dilation": (1, d)}
    return xp, {**keywords, "method": method, "padding": padding_2d}


def _centred(options, taps: int, dilation: int, pads, padding_2d, mode):
    """``(pads, padding_2d, mode)`` with a correlation's "same" mode centred as
    :func:`scipy.signal.correlate` and ``numpy.correlate`` centre it: for an even dilated span the
    window starts ``(span - 1) // 2`` into the full result, where ``scipy.signal.correlate2d`` (and
    so ``corr2d``) starts it at ``span // 2``; the 2-D call takes it as explicit padding. Odd spans,
    convolutions (``convolve`` and ``convolve2d`` agree) and other modes are left as given."""
    span = dilation * (taps - 1) + 1
    if options.mode != "same" or options.convolve or span % 2:
        return pads, padding_2d, mode
    centred = (span // 2, (span - 1) // 2)
    return centred, ((0, 0), centred), "valid"


def _check_multi(x, w, g, bias, groups, data_format, options: dict):
    """The namespace, whether channels-last, the 2-D keywords, the windows and the parsed options of a
    checked ``corr1d_multi`` call."""
    channels_last = parse_data_format(data_format)
    xp = check_arrays(x, w, k_name="w")
    layout = "(N, L, C_in) or (L, C_in)" if channels_last else "(N, C_in, L) or (C_in, L)"
    if x.ndim not in (2, 3):
        raise ValueError(f"x must have shape {layout}; got shape {tuple(x.shape)}")
    if w.ndim != 3:
        raise ValueError(f"w must have shape (C_out, C_in // groups, l); got shape {tuple(w.shape)}")
    groups = parse_int("groups", groups)
    c_out = w.shape[0]
    check_groups(x.shape[-1 if channels_last else -2], x, w, groups)
    if bias is not None:
        check_bias(xp, bias, x, w, x_checked=True)
    s, d = _single("stride", options["stride"]), _single("dilation", options["dilation"])
    pads, padding_2d = _padding(options["padding"], options["mode"])
    parsed = parse_options({n: options[n] for n in ("mode", "boundary", "fillvalue", "method")})
    pads, padding_2d, mode = _centred(parsed, w.shape[-1], d, pads, padding_2d, options["mode"])
    L = x.shape[-2 if channels_last else -1]
    axis = _axis(x.shape, w.shape, (*x.shape[:-2], c_out), parsed, s, d, pads, L=L, k_name="w")
    count = axis.count
    if g is not None:
        out = (*x.shape[:-2], count, c_out) if channels_last else (*x.shape[:-2], c_out, count)
        check_g(x, g, out, ' (data_format="channels_last")' if channels_last else "")
    keywords = {**options, "mode": mode, "stride": (1, s), "dilation": (1, d), "padding": padding_2d}
    return xp, channels_last, {**keywords, "groups": groups, "data_format": data_format}, axis, parsed


# -- the public fronts ------------------------------------------------------------------------


def _front(op: str, function_2d, x, k, given: tuple):
    """``corr1d`` (``op`` "corr1d", ``function_2d`` ``corr2d``) or ``conv1d`` of ``x``, ``k`` and the
    option values ``given`` (in the order of ``xcorr._call.OPTIONS``): the prepared call of this
    signature (kept beside the 2-D ones, and forgotten with them), else check and prepare it."""
    key = None
    try:
        key = public_key(op, x, k, given)
        call = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):  # not prepared, or not arrays (the checks name them)
        keywords = _check(op, x, k, None, *given)[1]

        def call(x, k):
            return function_2d(x[..., None, :], k[..., None, :], **keywords)[..., 0, :]

        remember(key, call)
    return call(x, k)


def corr1d(
    x: Array,
    k: Array,
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
    return _front("corr1d", corr2d, x, k, (mode, boundary, fillvalue, stride, dilation, method, padding))


def conv1d(
    x: Array,
    k: Array,
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
    return _front("conv1d", conv2d, x, k, (mode, boundary, fillvalue, stride, dilation, method, padding))


def _vjp1(op: str, vjp2, x, k, g, given: tuple):
    """``corr1d_vjp`` (``op`` "corr1d", ``vjp2`` ``corr2d_vjp``) or ``conv1d_vjp`` of the options'
    values ``given``, checked once per signature (the output gradient's included)."""
    return public_front(f"{op}_vjp", partial(_prepare_vjp1, op, vjp2), x, k, g, None, None, given)


def _prepare_vjp1(op: str, vjp2, x, k, g, groups, data_format, given: tuple):
    xp, keywords = _check(op, x, k, g, *given)

    def rows(x, k, g):
        gx, gk = vjp2(x[..., None, :], k[..., None, :], g[..., None, :], **keywords)
        return gx[..., 0, :], gk[..., 0, :]

    return adapter_for(xp), rows


def corr1d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Single = 1,
    dilation: Single = 1,
    method: Method = "auto",
    padding: Padding1D = None,
) -> tuple[Array, Array]:
    return _vjp1("corr1d", corr2d_vjp, x, k, g, (mode, boundary, fillvalue, stride, dilation, method, padding))


def conv1d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Single = 1,
    dilation: Single = 1,
    method: Method = "auto",
    padding: Padding1D = None,
) -> tuple[Array, Array]:
    return _vjp1("conv1d", conv2d_vjp, x, k, g, (mode, boundary, fillvalue, stride, dilation, method, padding))


def corr1d_multi(
    x: Array,
    w: Array,
    /,
    *,
    bias: Array | None = None,
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
    given = (mode, boundary, fillvalue, stride, dilation, method, padding)
    return public_front("corr1d_multi", _prepare_multi, x, w, bias, groups, data_format, given)


def _prepare_multi(x, w, bias, groups, data_format, given: tuple):
    """``(adapter, run)`` of a checked ``corr1d_multi`` call: the library's own 1-D convolution
    where it has one, else ``corr2d_multi`` of one-row images."""
    xp, last, keywords, windows, options = _check_multi(x, w, None, bias, groups, data_format, dict(zip(OPTIONS, given)))
    dtype, adapter = result_dtype(xp, x.dtype, w.dtype), adapter_for(xp)
    if takes_native(adapter, xp, 1, options.method, dtype, w, keywords["groups"]):

        return adapter, native_front(adapter, xp, x, w, bias, dtype, (windows,), keywords["groups"], last, options)
    row, unrow = one_row(last)

    def rows(x, w, bias):
        return unrow(corr2d_multi(row(x), w[..., None, :], bias=bias, **keywords))

    return adapter, rows


def corr1d_multi_vjp(
    x: Array,
    w: Array,
    g: Array,
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
) -> tuple[Array, Array]:
    given = (mode, boundary, fillvalue, stride, dilation, method, padding)
    return public_front("corr1d_multi_vjp", _prepare_multi_vjp, x, w, g, groups, data_format, given)


def _prepare_multi_vjp(x, w, g, groups, data_format, given: tuple):
    """``(adapter, run)`` of a checked ``corr1d_multi_vjp`` call: ``corr2d_multi_vjp`` of one-row images."""
    xp, last, keywords, *_ = _check_multi(x, w, g, None, groups, data_format, dict(zip(OPTIONS, given)))
    row, unrow = one_row(last)

    def rows(x, w, g):
        gx, gw = corr2d_multi_vjp(row(x), w[..., None, :], row(g), **keywords)
        return unrow(gx), gw[..., 0, :]

    return adapter_for(xp), rows


def one_row(last: bool):
    """``(row, unrow)``: a signal as an image of one row and back, channels-first ``(..., C, L)``
    or channels-last ``(..., L, C)``, by indexing (numpy's ``expand_dims`` and ``squeeze`` are
    Python functions that a small call would pay on every call)."""
    if last:
        return (lambda a: a[..., None, :, :]), (lambda a: a[..., 0, :, :])
    return (lambda a: a[..., None, :]), (lambda a: a[..., 0, :])


# -- docstrings ---------------------------------------------------------------------------------

_OPTIONS_DOC = """\
    mode : {{"valid", "same", "full"}}, default "valid"
        Output length, as in :func:`scipy.signal.{counterpart}`: "valid" keeps the windows inside ``x``
        (``L - l' + 1``), "same" is centred and as long as ``x`` (scipy's centring for even
        kernels, as ``numpy.{np}`` centres them too; for an even ``l'`` the correlation's
        "same" window is one sample left of ``xcorr.corr2d``'s, which follows
        ``scipy.signal.correlate2d``), "full" is every overlap (``L + l' - 1``); ``l'`` is the
        dilated kernel length.
    boundary : {{"fill", "wrap", "symm", "reflect", "edge"}}, default "fill"
        How ``x`` is extended beyond its ends (in "same" and "full" modes, and by ``padding``):
        ``fillvalue``, periodically, mirrored with the end repeated (``c b a | a b c``), mirrored
        without it (``c b | a b c``, as ``numpy.pad``) or the end repeated; the aliases of
        ``xcorr.corr2d`` are accepted. "reflect" cannot extend a signal of length 1.
    fillvalue : scalar, default 0
        Value outside ``x`` for ``boundary="fill"``.
    stride : int or (int,), default 1
        Keep every ``s``-th output of the dense result, starting at index 0 (``dense[..., ::s]``).
    dilation : int or (int,), default 1
        Spacing between kernel taps: a kernel of ``l`` taps covers ``d*(l-1)+1`` samples.
    method : {{"auto", "direct", "fft", "native"}}, default "auto"
        How to compute it, as in ``xcorr.corr2d`` (the 2-D implementation computes it on a
        signal of one row); every method gives the same result within float rounding.
    padding : int, (int, int), "SAME", "VALID" or "SAME_LOWER", optional
        Extend ``x`` by this many samples (with ``boundary``) at both ends, or by ``(left,
        right)``, and take the "valid" correlation of the result
        (:func:`torch.nn.functional.conv1d`'s ``padding``); "SAME" is lax's and Keras'
        (``ceil(L / s)`` outputs, the odd sample after the signal; "SAME_LOWER": before it),
        "VALID" none; names in any case. Only with ``mode="valid"``."""

_SIGNALS_DOC = """\
    x : array, shape (..., L)
        Input signal(s) of any array-API library; leading dimensions are batch dimensions.
    k : array, shape (l,) or (..., l)
        Kernel(s) from the same library and device as ``x``; its leading dimensions broadcast
        against those of ``x``, as ``xcorr.corr2d``'s do."""

_RAISES_DOC = """\
    TypeError
        As ``xcorr.corr2d``: non-arrays, bool arrays, arrays of two libraries.
    ValueError
        A 0-d ``x`` or ``k``, an empty one, a (dilated) kernel longer than ``x`` in "valid" mode
        (or than the padded ``x``), batch shapes that do not broadcast, a ``stride`` or
        ``dilation`` that is not one int >= 1, a ``padding`` that is not an int, a pair or a
        name{extra}, and every option ``xcorr.corr2d`` refuses; all before any computation."""


_DESIGN = """A thin front of the 2-D function: ``x[..., None, :]`` and ``k[..., None, :]`` are correlated
    with the row stride and dilation 1 and no row padding, and the unit row axis is squeezed, so
    every backend, method, boundary and fast path of the 2-D function serves it."""


def _doc(title: str, formula: str, body: str, examples: str, *, counterpart: str = "correlate") -> str:
    options = _OPTIONS_DOC.format(counterpart=counterpart, np=counterpart)
    return front_doc(title, formula, _DESIGN, body, options, examples)


corr1d.__doc__ = _doc(
    "1-D cross-correlation of the last axis, on any array-API backend.",
    '``y[..., i] = sum_a x[..., i*s + a*d] * k[..., a]`` (in "valid" mode), the correlation of\n'
    "    :func:`torch.nn.functional.conv1d` (no conjugation); ``numpy.correlate`` and\n"
    "    :func:`scipy.signal.correlate` of real signals.",
    _SIGNALS_DOC,
    f"""    array, shape (..., L')
        Same library and device as the inputs; the dtype is the promotion of the two, as in
        ``xcorr.corr2d``.

    Raises
    ------
{_RAISES_DOC.format(extra="")}

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x, k = xp.arange(6), xp.asarray([1, 0, -1])
    >>> xcorr.corr1d(x, k)
    Array([-2, -2, -2, -2], dtype=array_api_strict.int64)
    >>> xcorr.corr1d(x, k, padding=1, boundary="edge")
    Array([-1, -2, -2, -2, -2, -1], dtype=array_api_strict.int64)
    """,
)

conv1d.__doc__ = _doc(
    "1-D convolution of the last axis, on any array-API backend.",
    "``y[..., i] = sum_a x[..., i - a] * k[..., a]``, the kernel flipped, matching\n"
    "    :func:`scipy.signal.convolve` and ``numpy.convolve`` in every mode (scipy's centring of\n"
    '    even kernels in "same" mode included): ``corr1d`` of the kernel flipped, in every mode\n'
    "    (unlike ``conv2d``, whose \"same\" follows ``scipy.signal.convolve2d``).",
    _SIGNALS_DOC,
    f"""    array, shape (..., L')
        Same library and device as the inputs; the dtype is the promotion of the two.

    Raises
    ------
{_RAISES_DOC.format(extra="")}

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> xcorr.conv1d(xp.arange(6), xp.asarray([1, 0, -1]), mode="same")
    Array([ 1,  2,  2,  2,  2, -4], dtype=array_api_strict.int64)
    """,
    counterpart="convolve",
)

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
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> gx, gk = xcorr.{name}_vjp(xp.arange(5.0), xp.asarray([1.0, -1.0]), xp.ones(4))
    >>> gx
    Array([{gx}], dtype=array_api_strict.float64)
    >>> gk
    Array([{gk}], dtype=array_api_strict.float64)
    """

for _f, _name, _gx, _gk, _counterpart in (
    (corr1d_vjp, "corr1d", " 1.,  0.,  0.,  0., -1.", " 6., 10.", "correlate"),
    (conv1d_vjp, "conv1d", "-1.,  0.,  0.,  0.,  1.", "10.,  6.", "convolve"),
):
    _f.__doc__ = _doc(
        f"Gradients ``(gx, gk)`` of ``{_name}(x, k, **options)`` for an output gradient ``g``.",
        f"The exact vector-Jacobian product (no conjugation, as ``jax.vjp``), computed by\n"
        f"    ``xcorr.{_name[:-2]}2d_vjp`` on the one-row signal and kernel.",
        _SIGNALS_DOC + f"\n    g : array, shape of ``{_name}(x, k, **options)``\n"
        "        Gradient of a scalar loss with respect to the output.",
        _VJP_RETURNS.format(
            name=_name, gx=_gx, gk=_gk, raises=_RAISES_DOC.format(extra=", or a ``g`` not of the output's shape")
        ),
        counterpart=_counterpart,
    )

_MULTI_DOC = """\
    x : array, shape (N, C_in, L) or (C_in, L)
        Input signals of any array-API library (``(N, L, C_in)`` or ``(L, C_in)`` channels-last).
    w : array, shape (C_out, C_in // groups, l)
        Filters, from the same library and device as ``x``, in :func:`torch.nn.functional.conv1d`'s layout.
{extra}    groups : int, default 1
        Split the channels into ``groups`` independent groups; it must divide ``C_in`` and ``C_out``.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        ``x``{g} and the result as ``(N, C, L)`` or as ``(N, L, C)``; ``w`` keeps its layout."""

corr1d_multi.__doc__ = _doc(
    "Multi-channel 1-D cross-correlation, the forward pass of a 1-D convolutional layer.",
    '``y[n, o, i] = sum_{c, a} x[n, g*Cg + c, i*s + a*d] * w[o, c, a]`` ("valid" mode) plus\n'
    "    ``bias[o]``: :func:`torch.nn.functional.conv1d` ``(x, w, bias, groups=groups)``, extended to every\n"
    "    mode, boundary and padding of ``corr1d``; ``xcorr.corr2d_multi`` computes it.",
    _MULTI_DOC.format(
        g="",
        extra="    bias : array, shape (C_out,), optional\n"
        "        Added to every position of each output channel; its dtype must promote to the output's.\n",
    ),
    """    array, shape (N, C_out, L') or (C_out, L')
        Same library and device as the inputs (``(N, L', C_out)`` channels-last).

    Raises
    ------
    TypeError, ValueError
        As ``corr1d``; also ValueError for ``x`` not 2-D or 3-D, ``w`` not 3-D, channel counts
        that ``groups`` does not divide or that ``w`` does not match, or ``bias`` not of shape
        ``(C_out,)``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x, w = xp.ones((1, 2, 4)), xp.ones((3, 2, 2))
    >>> xcorr.corr1d_multi(x, w, bias=xp.asarray([0.0, 1.0, 2.0]))
    Array([[[4., 4., 4.],
            [5., 5., 5.],
            [6., 6., 6.]]], dtype=array_api_strict.float64)
    """,
)

corr1d_multi_vjp.__doc__ = _doc(
    "Gradients ``(gx, gw)`` of ``corr1d_multi(x, w, **options)`` for an output gradient ``g``.",
    "The exact vector-Jacobian product, computed by ``xcorr.corr2d_multi_vjp`` on one-row signals.",
    _MULTI_DOC.format(
        g=", ``g`` and ``gx``",
        extra="    g : array, shape of ``corr1d_multi(x, w, **options)``\n"
        "        Gradient of a scalar loss with respect to the output.\n",
    ),
    """    gx : array, shape of ``x``
        Gradient with respect to ``x``.
    gw : array, shape of ``w``
        Gradient with respect to ``w``.

    Raises
    ------
    TypeError, ValueError
        As ``corr1d_multi``, and ValueError when ``g`` does not have the output's shape.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> x, w = np.arange(8.0).reshape(1, 2, 4), np.ones((1, 2, 2))
    >>> gx, gw = xcorr.corr1d_multi_vjp(x, w, np.ones((1, 1, 3)))
    >>> gx.tolist()
    [[[1.0, 2.0, 2.0, 1.0], [1.0, 2.0, 2.0, 1.0]]]
    >>> gw.tolist()
    [[[3.0, 6.0], [15.0, 18.0]]]
    """,
)
