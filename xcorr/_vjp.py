"""Vector-Jacobian products of corr2d / conv2d, in pure array-API code.

The forward pass is ``y = window_sum(extend(x), k)``: a boundary extension of
``x`` followed by a strided, dilated shift-and-add. Its VJP is the adjoint of
each step, in reverse:

* the shift-and-add's adjoint scatters the output gradient ``g`` back through
  the windows. With ``g`` zero-inserted to undo the stride, that scatter is a
  "full" convolution of ``g`` with the (dilated) kernel, computed by the
  adapter's own prepared correlation (``_composite.input_gradient``) so
  per-backend fast paths serve the backward too;
* the extension's adjoint folds the gradient of the extended image back onto
  ``x``: a "wrap", "symm", "reflect" or "edge" position adds onto the pixel
  it copied, a "fill" position is dropped;
* the kernel gradient is ``gk[a, b] = sum(g * window(a, b) of extend(x))``,
  summed over batch dimensions that ``k`` was broadcast along: one reduction
  per tap, or, where the FFT pays off, one valid correlation of ``extend(x)``
  with ``g`` as the kernel (stride and dilation swap roles).

The VJP is the transpose of the (bi)linear map, without conjugation: for
complex inputs it is what ``jax.vjp`` returns. Nothing is written in place,
so it runs on immutable (jax) and lazy (dask) arrays. Where the FFT serves
an eager library without autodiff of its own, both gradients come from one
spectrum of ``g`` instead (``_fft.vjp``, which multiplies into its own
spectra).
"""

from __future__ import annotations

from functools import partial

from ._call import OPTIONS, public_front, validate_call
from ._composite import adapter_vjp
from ._options import Geometry, Options, cast_integers, result_dtype
from ._prepared import half_vjp
from ._registry import adapter_for
from ._typing import Array, Boundary, Method, Mode, Padding, Pair, Scalar

__all__ = ["conv2d_vjp", "corr2d_vjp", "vjp"]


def vjp(xp, x, k, g, options: Options, geometry: Geometry, *, need_x=True, need_k=True):
    """``(gx, gk)`` of validated inputs: the transpose of the correlation at ``g``.

    ``need_x=False`` or ``need_k=False`` skips that gradient (it is None):
    training a layer needs no input gradient, and torch tells which it needs.
    The adapter of ``xp`` computes it (``Adapter.vjp``), on the taps'
    windows laid end to end where the dilation leaves gaps between them
    (``_composite.compacted_vjp``).
    """
    x, k, g = cast_integers(xp, result_dtype(xp, x.dtype, k.dtype, g.dtype), x, k, g)
    return adapter_vjp(adapter_for(xp), xp, x, k, g, options, geometry, need_x, need_k)


def _public_vjp(op: str, x, k, g, given: tuple):
    """``corr2d_vjp`` (``op`` "corr2d") or ``conv2d_vjp`` of ``x``, ``k``, ``g`` and the options' values
    ``given``: validated once per signature, then the VJP."""
    return public_front(f"{op}_vjp", partial(_prepare_vjp, op), x, k, g, None, None, given)


def _prepare_vjp(op: str, x, k, g, groups, data_format, given: tuple):
    call = validate_call(op, {"x": x, "k": k, "g": g, **dict(zip(OPTIONS, given))})
    return call.adapter, partial(half_vjp, call, _vjp_of_call)


def _vjp_of_call(call, x, k, g):
    x, k, g = call.cast(x, k, cotangent=g)
    return adapter_vjp(call.adapter, call.xp, x, k, g, call.options, call.geometry, True, True)


_VJP_DOC = """Gradients of ``{name}(x, k, **options)`` for an output gradient ``g``.

    Returns ``(gx, gk)`` with ``gx[...] = sum(g * d{name}/dx[...])`` and
    likewise for ``k``: the vector-Jacobian product of the (bilinear) map,
    exact, for every mode, boundary, padding, stride, dilation and batch shape. It is
    pure array-API code, so it trains models on numpy, array-api-strict,
    dask (lazily) and cupy; the torch and jax adapters use it as their
    backward pass.

    Parameters
    ----------
    x : array, shape (..., H, W)
        Input of the forward call.
    k : array, shape (h, w) or (..., h, w)
        Kernel of the forward call.
    g : array, shape of ``{name}(x, k, **options)``
        Gradient of a scalar loss with respect to the output.
    mode, boundary, fillvalue, stride, dilation, padding
        The options of the forward call; see ``xcorr.{name}``.
    method : {{"auto", "direct", "fft", "native"}}, default "auto"
        How the correlations inside the gradients are computed (see
        ``xcorr.{name}``): the input gradient's "full" correlation, and the
        kernel gradient as one reduction per tap ("direct") or one FFT
        correlation ("fft"; "auto" picks with the forward's cost model).

    Returns
    -------
    gx : array, shape of ``x``
        Gradient with respect to ``x``, summed over the batch dimensions
        along which ``x`` was broadcast.
    gk : array, shape of ``k``
        Gradient with respect to ``k``, summed over the batch dimensions
        along which ``k`` was broadcast (one kernel for a batch gets the sum
        over the batch).

    Both have the dtype of their operand (the result dtype for an integer
    operand; the real part for a real operand of a complex result). For
    complex inputs this is the transpose without conjugation, as ``jax.vjp``
    defines it.

    Raises
    ------
    TypeError, ValueError
        As ``xcorr.{name}`` for ``x``, ``k`` and the options, and ValueError
        when ``g`` does not have the output's shape.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> x = xp.reshape(xp.arange(9.0), (3, 3))
    >>> k = xp.asarray([[1.0, -1.0]])
    >>> gx, gk = xcorr.{name}_vjp(x, k, xp.ones((3, 2)))
    >>> gk
    Array([[{gk}]], dtype=array_api_strict.float64)
    """


def corr2d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    method: Method = "auto",
    padding: Padding = None,
) -> tuple[Array, Array]:
    return _public_vjp("corr2d", x, k, g, (mode, boundary, fillvalue, stride, dilation, method, padding))


def conv2d_vjp(
    x: Array,
    k: Array,
    g: Array,
    /,
    *,
    mode: Mode = "valid",
    boundary: Boundary = "fill",
    fillvalue: Scalar = 0,
    stride: Pair = 1,
    dilation: Pair = 1,
    method: Method = "auto",
    padding: Padding = None,
) -> tuple[Array, Array]:
    return _public_vjp("conv2d", x, k, g, (mode, boundary, fillvalue, stride, dilation, method, padding))


corr2d_vjp.__doc__ = _VJP_DOC.format(name="corr2d", gk="21., 27.")
conv2d_vjp.__doc__ = _VJP_DOC.format(name="conv2d", gk="27., 21.")
