"""Public 2-D cross-correlation and convolution."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import _methods
from ._adapter import Adapter, adapter_for
from ._options import Options, check_arrays, check_integral_fill, plan, result_dtype
from ._typing import Array, Boundary, Method, Mode, Padding, Pair, Scalar

__all__ = ["conv2d", "corr2d"]

_PARAMETERS = """\
    Parameters
    ----------
    x : array, shape (..., H, W)
        Input image(s) of any array-API library (numpy, torch, jax, dask,
        cupy, array_api_strict, ...). Leading dimensions are batch dimensions.
    k : array, shape (h, w) or (..., h, w)
        Kernel(s) from the same library and device as ``x``. Its leading
        dimensions broadcast against those of ``x``: one kernel can serve a
        batch, or each image can have its own kernel.
    mode : {"valid", "same", "full"}, default "valid"
        Output size, as in ``scipy.signal.correlate2d``: "valid" keeps only
        windows inside ``x`` (H - h' + 1), "same" is centred and as large as
        ``x`` (scipy's centring for even kernels), "full" is every overlap
        (H + h' - 1); ``h'`` is the dilated kernel size.
    boundary : {"fill", "wrap", "symm", "reflect", "edge"}, default "fill"
        How ``x`` is extended beyond its edges (in "same" and "full" modes,
        and by ``padding``): ``fillvalue`` ("fill"; aliases "pad",
        "constant", "zeros"), periodically ("wrap"; "circular",
        "grid-wrap"), by mirroring with the edge repeated ("symm";
        "symmetric", "grid-mirror": ``d c b a | a b c d``), by mirroring
        without repeating it ("reflect"; "mirror": ``d c b | a b c d``, as
        ``numpy.pad`` and torch's "reflect", which is *not*
        ``scipy.ndimage``'s "reflect") or by repeating the edge ("edge";
        "replicate", "nearest": ``a a a | a b c d``). Extensions wider than
        ``x`` continue the pattern as ``numpy.pad`` does (the periodic ones
        repeat). "reflect" cannot extend an axis of length 1 (ValueError).
    fillvalue : scalar, default 0
        Value outside ``x`` for ``boundary="fill"``.
    padding : int, (int, int), ((int, int), (int, int)), "SAME" or "VALID", optional
        Extend ``x`` by this many elements (with ``boundary``) and take the
        "valid" correlation of the result: an int pads all four sides,
        ``(ph, pw)`` both sides of each axis, ``((top, bottom), (left,
        right))`` each side on its own (``torch.nn.functional.conv2d``'s and
        ``lax.conv_general_dilated``'s ``padding``). "SAME" is the padding of
        ``lax``, TensorFlow and Keras: ``ceil(H / sh)`` output rows, the odd
        padding element after the image ("SAME_LOWER": before it); "VALID"
        is none. Names in any case. Only with ``mode="valid"`` (the default),
        which ``padding`` replaces.
    stride : int or (int, int), default 1
        Keep every ``s``-th output of the dense result, starting at index 0
        (``dense[..., ::sh, ::sw]``); the skipped outputs are never computed.
    dilation : int or (int, int), default 1
        Spacing between kernel taps: an ``(h, w)`` kernel covers
        ``(d*(h-1)+1, d*(w-1)+1)`` input pixels.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How to compute it; every method gives the same result within float
        rounding. "direct" is shift-and-add over the kernel taps (exact for
        integers, extra memory about one output); "fft" goes through the
        library's real FFT (floating and complex dtypes only; a NaN or inf
        spreads over the whole result); "native" calls the library's own
        convolution (torch, jax; it falls back to "direct" for dtypes the
        library cannot convolve). "auto" picks "direct" or "fft" from the
        shapes, dtype and backend with a cost model calibrated on benchmarks
        (``xcorr._methods``), never "fft" for integers or non-finite inputs
        it can see.

    Returns
    -------
    array, shape (..., H', W')
        Same library and device as the inputs (a lazy dask array for dask).
        The dtype is the array-API promotion of the two dtypes; integers stay
        integers and are exact, and an integer operand combined with a
        floating one takes the floating dtype.

    Raises
    ------
    TypeError
        Inputs that are not arrays (Python lists), bool arrays, or arrays of
        two different libraries.
    ValueError
        Fewer than 2 dimensions, an empty kernel or image, a (dilated) kernel
        larger than ``x`` in "valid" mode (or than the padded ``x``), batch
        shapes that do not broadcast, an unknown mode or boundary, a negative
        or wrongly shaped ``padding``, ``padding`` with a ``mode`` other than
        "valid", "reflect" on an axis of length 1, ``stride``/``dilation`` not 1
        or 2 integers >= 1, a non-scalar ``fillvalue``, arrays on two
        devices, an unknown ``method``, or ``method="native"`` on a library
        without a native convolution. All checks happen before any
        computation. ``method="fft"`` with integer inputs is a TypeError.
"""


def _correlate(x, k, options: Options):
    """Validated, dispatched correlation (the prepared call of this signature, made on first use)."""
    try:
        call = _PREPARED[(type(x), x.shape, x.dtype, type(k), k.shape, k.dtype, options)]
    except (KeyError, TypeError, AttributeError):
        return _prepare_and_call(x, k, options, (type(x), x.shape, x.dtype, type(k), k.shape, k.dtype, options))
    return call(x, k)


class Prepared:
    """A correlation of one signature (array types, shapes, dtypes, options), validated once.

    Everything that depends only on the signature (argument checks, the
    geometry, the method "auto" takes, the adapter and what it prepares) is
    done when the signature is first seen; a repeated call checks only what
    can differ between arrays of one signature (their devices, and the
    finiteness an FFT needs) and runs.
    """

    __slots__ = ("adapter", "check_devices", "check_finite", "geometry", "key", "options", "requested", "run", "tuning", "xp")  # fmt: skip

    def __init__(self, xp, adapter: Adapter, requested: Options, options: Options, geometry, run, *, check_finite):
        self.xp = xp
        self.adapter = adapter
        self.tuning = adapter.tuning
        self.requested = requested
        self.options = options
        self.geometry = geometry
        self.run = run
        self.check_devices = adapter.devices
        self.check_finite = check_finite
        self.key = None

    def __call__(self, x, k):
        if self.tuning is not self.adapter.tuning:
            # The adapter's tuning was replaced: its choices may differ now.
            return _prepare_and_call(x, k, self.requested, self.key)
        if self.check_devices and not self.adapter.same_device(x, k):
            check_arrays(x, k)  # raises, naming both devices
        if self.check_finite and not _finite(self.xp, x, k):
            # NaN/inf would spread over an FFT; shift-and-add keeps them local.
            direct = replace(self.options, method="direct")
            return self.adapter.correlate(self.xp, x, k, direct, self.geometry)
        return self.run(x, k)


# Prepared calls by signature: (type, shape, dtype) of x and k, and the Options
# (or, for the public functions, their keyword arguments as given).
# Prepared calls of corr2d/conv2d and of corr2d_multi (PreparedMulti), or their Widened forms.
_PREPARED: dict[tuple, Callable[..., Any]] = {}
_MAX_PREPARED = 1024
_prepared_lock = threading.Lock()


def clear_prepared() -> None:
    """Forget every prepared call (after an adapter or a module-level threshold changed)."""
    with _prepared_lock:
        _PREPARED.clear()


def _finite(xp, x, k) -> bool:
    return bool(xp.all(xp.isfinite(x))) and bool(xp.all(xp.isfinite(k)))


HALF = ("float16", "bfloat16")


def half_precision(dtype) -> bool:
    """Whether ``dtype`` is float16 or bfloat16 (of any library), which xcorr computes in float32."""
    return str(dtype).rsplit(".", 1)[-1] in HALF


class Widened:
    """A prepared float32 call for half-precision operands: cast up, compute, round once.

    Products and sums of float16/bfloat16 operands are computed in float32
    (every method, so "fft" and "auto" work too) and the result is rounded
    to the half dtype once, as ``torch.nn.functional.conv2d`` and
    ``jax.lax.conv_general_dilated`` return it. Casts are differentiable, so
    autodiff sees the float32 computation between them.
    """

    __slots__ = ("dtype", "inner", "key", "xp")

    def __init__(self, xp, dtype, inner):
        self.xp = xp
        self.dtype = dtype
        self.inner = inner
        self.key = None

    def __call__(self, x, k, *bias):
        # A bias (corr2d_multi's) is added in float32 too, before the one rounding.
        xp = self.xp
        wide = xp.float32
        return xp.astype(self.inner(*(xp.astype(a, wide) for a in (x, k, *bias))), self.dtype)


def _prepare(x, k, options: Options) -> Prepared | Widened:
    xp = check_arrays(x, k)
    geometry = plan(x.shape, k.shape, options)
    dtype = result_dtype(xp, x.dtype, k.dtype)
    if half_precision(dtype):
        return Widened(xp, dtype, _prepare(xp.astype(x, xp.float32), xp.astype(k, xp.float32), options))
    fillvalue = check_integral_fill(xp, dtype, options.fillvalue)  # as the dtype holds it
    options = replace(options, fillvalue=fillvalue)
    adapter = adapter_for(xp)
    method = resolve_method(adapter, xp, x, k, dtype, options, geometry)
    # "auto" chose the FFT for eager arrays: their values are checked on every call.
    check_finite = options.method == "auto" and method == "fft" and adapter.eager
    resolved = replace(options, method=method)
    run = adapter.prepare_correlate(xp, x, k, resolved, geometry)
    return Prepared(xp, adapter, options, resolved, geometry, run, check_finite=check_finite)


def _prepare_and_call(x, k, options: Options, key):
    prepared = _prepare(x, k, options)
    if remember(key, prepared):
        prepared.key = key
    return prepared(x, k)


def remember(key, prepared) -> bool:
    """Keep ``prepared`` for calls of signature ``key`` (None, or unhashable: not kept)."""
    if key is None:
        return False
    try:
        hash(key)
    except TypeError:
        return False
    with _prepared_lock:
        if len(_PREPARED) >= _MAX_PREPARED:
            del _PREPARED[next(iter(_PREPARED))]
        _PREPARED[key] = prepared
    return True


def resolve_method(adapter: Adapter, xp, x, k, dtype, options: Options, geometry) -> str:
    """The concrete method ("direct", "fft" or "native") for this signature.

    Where "auto" picks "fft" on an eager library, the caller still checks that
    the values are finite (``Prepared``).
    """
    kind = _methods.dtype_kind(xp, dtype)
    if options.method == "native" and not adapter.native:
        msg = (
            f'method="native" needs a library with a native convolution (an adapter with '
            f"native = True); {adapter.name} has none"
        )
        raise ValueError(msg)
    if options.method == "fft" and kind == "integral":
        msg = f'method="fft" needs floating or complex inputs; got {dtype} (use method="direct")'
        raise TypeError(msg)
    if options.method != "auto":
        return options.method
    costs = adapter.costs(tuple(k.shape), geometry)
    return _methods.choose_method(costs, kind, x.shape, k.shape, geometry)


def _public_key(op, x, k, mode, boundary, fillvalue, stride, dilation, method, padding=None):
    """The signature of a public call ``op``, as given (types where a bool could pass for an int)."""
    return (
        op, type(x), x.shape, x.dtype, type(k), k.shape, k.dtype,
        mode, boundary, fillvalue, type(fillvalue),
        stride if type(stride) is int else (type(stride), *map(type, stride), *stride),
        dilation if type(dilation) is int else (type(dilation), *map(type, dilation), *dilation),
        method, _typed(padding),
    )  # fmt: skip


def _typed(value):
    """``value`` with the type of every item (a tuple of tuples of ints, or a name): ``True`` is not ``1``."""
    if isinstance(value, tuple):
        return (tuple, *map(_typed, value))
    return (type(value), value)


def _public_call(op: str, x, k, mode, boundary, fillvalue, stride, dilation, method, padding):
    """``corr2d`` (``op`` "corr2d") or ``conv2d``: the prepared call of this signature, else parse and prepare."""
    key = None
    try:
        key = _public_key(op, x, k, mode, boundary, fillvalue, stride, dilation, method, padding)
        call = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):
        pass
    else:
        return call(x, k)
    options = Options.parse(
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        stride=stride,
        dilation=dilation,
        convolve=op == "conv2d",
        method=method,
        padding=padding,
    )
    return _prepare_and_call(x, k, options, key)


def corr2d(
    x: Array,
    k: Array,
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
    return _public_call("corr2d", x, k, mode, boundary, fillvalue, stride, dilation, method, padding)


def conv2d(
    x: Array,
    k: Array,
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
    return _public_call("conv2d", x, k, mode, boundary, fillvalue, stride, dilation, method, padding)


corr2d.__doc__ = f"""2-D cross-correlation of the last two axes, on any array-API backend.

    ``y[..., i, j] = sum_{{a, b}} x[..., i*sh + a*dh, j*sw + b*dw] * k[..., a, b]``
    (in "valid" mode; other modes and ``padding`` shift the windows and extend ``x``).

    This is the deep-learning correlation of ``torch.nn.functional.conv2d``
    and ``jax.lax.conv_general_dilated``: the kernel is **not** conjugated.
    ``scipy.signal.correlate2d(x, k)`` equals ``corr2d(x, conj(k))``; for
    real inputs they are equal.

{_PARAMETERS}
    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x = xp.reshape(xp.arange(9), (3, 3))
    >>> k = xp.asarray([[0, 1], [2, 3]])
    >>> xcorr.corr2d(x, k)
    Array([[19, 25],
           [37, 43]], dtype=array_api_strict.int64)
    >>> xcorr.corr2d(x, k, padding=((0, 1), (0, 0)), boundary="edge")
    Array([[19, 25],
           [37, 43],
           [40, 46]], dtype=array_api_strict.int64)
    """

conv2d.__doc__ = f"""2-D convolution of the last two axes, on any array-API backend.

    ``y[..., i, j] = sum_{{a, b}} x[..., i - a, j - b] * k[..., a, b]``, the
    kernel flipped in both axes, matching ``scipy.signal.convolve2d`` in
    every mode and boundary. In "same" mode with an even kernel the window is
    centred as scipy centres it, which is *not* ``corr2d`` with a flipped
    kernel.

{_PARAMETERS}
    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x = xp.reshape(xp.arange(9), (3, 3))
    >>> k = xp.asarray([[0, 1], [2, 3]])
    >>> xcorr.conv2d(x, k)
    Array([[ 5, 11],
           [23, 29]], dtype=array_api_strict.int64)
    """
