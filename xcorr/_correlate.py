"""Public 2-D cross-correlation and convolution."""

from __future__ import annotations

from ._call import OPTIONS, public_key, validate, validate_call
from ._options import Options
from ._prepared import _PREPARED, prepare_and_call
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
        Output size, as in :func:`scipy.signal.correlate2d`: "valid" keeps only
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
        (``xcorr._cost_model``), never "fft" for integers, and "fft" only
        where the inputs are finite (jax decides inside the program, dask
        block by block): it never changes which outputs are NaN or inf.

    Returns
    -------
    array, shape (..., H', W')
        Same library and device as the inputs (a lazy dask array for dask).
        The dtype is the array-API promotion of the two dtypes; integers stay
        integers and are exact modulo ``2**bits`` (the arithmetic wraps in the
        result dtype, as numpy's does), and an integer operand combined with
        a floating one takes the floating dtype.

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
    """Validated, dispatched correlation of parsed options (the prepared call of this signature, made on first use)."""
    key = None
    try:
        key = (type(x), x.shape, x.dtype, type(k), k.shape, k.dtype, options)
        call = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):  # not prepared, or not arrays (the checks name them)
        return prepare_and_call(validate(x, k, options), x, k, key)
    return call(x, k)


def _public_call(op: str, x, k, given: tuple):
    """``corr2d`` (``op`` "corr2d") or ``conv2d`` of ``x``, ``k`` and the option keywords ``given``
    (their values, in the order of ``OPTIONS``): the prepared call of this signature, else validate
    and prepare."""
    key = None
    try:
        key = public_key(op, x, k, given)
        call = _PREPARED[key]
    except (KeyError, TypeError, AttributeError):
        return prepare_and_call(validate_call(op, {"x": x, "k": k, **dict(zip(OPTIONS, given))}), x, k, key)
    return call(x, k)


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
    return _public_call("corr2d", x, k, (mode, boundary, fillvalue, stride, dilation, method, padding))


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
    return _public_call("conv2d", x, k, (mode, boundary, fillvalue, stride, dilation, method, padding))


corr2d.__doc__ = f"""2-D cross-correlation of the last two axes, on any array-API backend.

    ``y[..., i, j] = sum_{{a, b}} x[..., i*sh + a*dh, j*sw + b*dw] * k[..., a, b]``
    (in "valid" mode; other modes and ``padding`` shift the windows and extend ``x``).

    This is the deep-learning correlation of :func:`torch.nn.functional.conv2d`
    and :func:`jax.lax.conv_general_dilated`: the kernel is **not** conjugated.
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
    kernel flipped in both axes, matching :func:`scipy.signal.convolve2d` in
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
