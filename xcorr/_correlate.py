"""Public 2-D cross-correlation and convolution."""

from __future__ import annotations

from dataclasses import replace

from . import _fft, _generic, _methods
from ._compat import backend_name
from ._dispatch import hook
from ._options import Options, check_arrays, check_integral_fill, plan, result_dtype

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
    boundary : {"fill", "wrap", "symm"}, default "fill"
        How ``x`` is extended beyond its edges in "same" and "full" modes:
        ``fillvalue`` ("fill", alias "pad"), periodically ("wrap", alias
        "circular") or by mirroring with the edge repeated ("symm", alias
        "symmetric"). Extensions repeat when the kernel is larger than ``x``.
    fillvalue : scalar, default 0
        Value outside ``x`` for ``boundary="fill"``.
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
        larger than ``x`` in "valid" mode, batch shapes that do not
        broadcast, an unknown mode or boundary, ``stride``/``dilation`` not 1
        or 2 integers >= 1, a non-scalar ``fillvalue``, arrays on two
        devices, an unknown ``method``, or ``method="native"`` on a library
        without a native convolution. All checks happen before any
        computation. ``method="fft"`` with integer inputs is a TypeError.
"""


def _correlate(x, k, options: Options):
    xp = check_arrays(x, k)
    geometry = plan(x.shape, k.shape, options)
    dtype = result_dtype(xp, x.dtype, k.dtype)
    fillvalue = check_integral_fill(xp, dtype, options.fillvalue)  # as the dtype holds it
    options = replace(options, fillvalue=fillvalue, method=_resolve_method(xp, x, k, dtype, options, geometry))
    native = hook(xp, "correlate")
    if native is not None:
        result = native(xp, x, k, options, geometry)
        if result is not NotImplemented:
            return result
    if options.method == "fft":
        return _fft.correlate(xp, x, k, options, geometry)
    return _generic.correlate(xp, x, k, options, geometry)


def _resolve_method(xp, x, k, dtype, options: Options, geometry) -> str:
    """The concrete method ("direct", "fft" or "native") for this call."""
    name = backend_name(xp)
    kind = _methods.dtype_kind(xp, dtype)
    if options.method == "native" and name not in _methods.NATIVE:
        msg = (
            f'method="native" needs a library with a native convolution '
            f"({', '.join(sorted(_methods.NATIVE))}); {name} has none"
        )
        raise ValueError(msg)
    if options.method == "fft" and kind == "integral":
        msg = f'method="fft" needs floating or complex inputs; got {dtype} (use method="direct")'
        raise TypeError(msg)
    if options.method != "auto":
        return options.method
    method = _methods.choose_method(name, kind, x.shape, k.shape, geometry)
    if method == "fft" and name not in ("jax", "dask"):
        # Eager libraries can look at the values: NaN/inf would spread over an FFT.
        if not bool(xp.all(xp.isfinite(x))) or not bool(xp.all(xp.isfinite(k))):
            method = "direct"
    return method


def corr2d(
    x, k, /, *, mode="valid", boundary="fill", fillvalue=0, stride=1, dilation=1, method="auto"
):
    options = Options.parse(
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        stride=stride,
        dilation=dilation,
        method=method,
    )
    return _correlate(x, k, options)


def conv2d(
    x, k, /, *, mode="valid", boundary="fill", fillvalue=0, stride=1, dilation=1, method="auto"
):
    options = Options.parse(
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        stride=stride,
        dilation=dilation,
        convolve=True,
        method=method,
    )
    return _correlate(x, k, options)


corr2d.__doc__ = f"""2-D cross-correlation of the last two axes, on any array-API backend.

    ``y[..., i, j] = sum_{{a, b}} x[..., i*sh + a*dh, j*sw + b*dw] * k[..., a, b]``
    (in "valid" mode; other modes shift the windows and extend ``x``).

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
