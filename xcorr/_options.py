"""Argument checking and the normalised description of one correlation.

Everything here runs before any backend work: it reads shapes, dtypes and
Python options, never array values, so it is safe under ``jax.jit`` and on
lazy dask arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ._compat import array_namespace, device, is_array_api_obj, isdtype
from ._cost_model import parse_method
from ._padding import AXIS_NAMES, MODES, check_padding_mode, lax_pads, parse_padding, parse_pair
from ._typing import Boundary as Boundary  # the Literal types live in _typing
from ._typing import Mode as Mode

# The five canonical boundaries and the other libraries' names for them
# (scipy.signal, numpy.pad, scipy.ndimage, torch's padding_mode). A name that
# means two different extensions in two libraries is not an alias:
# scipy.ndimage's "reflect" repeats the edge (our "symm"), numpy.pad's and
# torch's do not (our "reflect"), and "reflect" takes numpy's and torch's meaning.
BOUNDARY_ALIASES: dict[str, str] = {
    "fill": "fill",
    "pad": "fill",  # scipy.signal
    "constant": "fill",  # numpy.pad, scipy.ndimage
    "zeros": "fill",  # torch (fillvalue must then be 0)
    "wrap": "wrap",  # scipy.signal, numpy.pad, scipy.ndimage (for filters)
    "circular": "wrap",  # torch
    "grid-wrap": "wrap",  # scipy.ndimage
    "symm": "symm",  # scipy.signal
    "symmetric": "symm",  # numpy.pad
    "grid-mirror": "symm",  # scipy.ndimage (its "reflect")
    "reflect": "reflect",  # numpy.pad, torch
    "mirror": "reflect",  # scipy.ndimage
    "edge": "edge",  # numpy.pad
    "replicate": "edge",  # torch
    "nearest": "edge",  # scipy.ndimage
}


def parse_mode(mode: object) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        msg = f"mode must be one of {', '.join(map(repr, MODES))}; got {mode!r}"
        raise ValueError(msg)
    return mode


def parse_boundary(boundary: object) -> str:
    if not isinstance(boundary, str) or boundary not in BOUNDARY_ALIASES:
        names = ", ".join(map(repr, BOUNDARY_ALIASES))
        msg = f"boundary must be one of {names}; got {boundary!r}"
        if isinstance(boundary, str) and boundary.lower() in BOUNDARY_ALIASES:
            msg += f" (the names are lower case: {boundary.lower()!r})"
        raise ValueError(msg)
    return BOUNDARY_ALIASES[boundary]


def parse_fillvalue(fillvalue: object) -> int | float | complex:
    if isinstance(fillvalue, bool) or not isinstance(fillvalue, (int, float, complex)):
        # NumPy scalars and 0-d arrays of any library are accepted when they
        # convert to a Python number; anything with a size other than 1 is not.
        shape = getattr(fillvalue, "shape", None)
        if shape is not None and shape == ():
            try:
                return fillvalue.item()  # type: ignore[attr-defined]
            except (AttributeError, TypeError, ValueError):
                pass
        msg = f"fillvalue must be a scalar number; got {type(fillvalue).__name__}"
        if shape is not None:
            msg += f" of shape {tuple(shape)}"
        raise ValueError(msg)
    return fillvalue


def _describe(a) -> str:
    return f"{type(a).__module__}.{type(a).__name__} of shape {tuple(a.shape)} and dtype {a.dtype}"


def _is_masked_array(a) -> bool:
    """Whether ``a`` is a ``numpy.ma.MaskedArray`` (or a subclass), without touching ``numpy.ma``.

    The module is not read: another thread may be importing it (array_api_compat's numpy namespace
    does, on the first call), and a partially initialised ``numpy.ma`` has no ``MaskedArray`` yet.
    An instance exists only once its class does, so its type's MRO is enough.
    """
    return any(c.__name__ == "MaskedArray" and c.__module__ in ("numpy.ma", "numpy.ma.core") for c in type(a).__mro__)


def check_arrays(x, k, *, x_name: str = "x", k_name: str = "k", x_checked: bool = False):
    """Return the common namespace of ``x`` and ``k`` after checking them.

    Raises TypeError for non-arrays, bool dtypes and mixed libraries, and
    ValueError for arrays on two devices. ``x_checked``: ``x`` passed its own
    checks already (with another operand), so only ``k`` and the pair are checked.
    """
    own = ((k_name, k),) if x_checked else ((x_name, x), (k_name, k))
    for name, a in own:
        check_array(name, a)
    try:
        xp = array_namespace(x, k)
    except TypeError as err:
        msg = (
            f"{x_name} and {k_name} must come from the same array library; got "
            f"{type(x).__module__}.{type(x).__name__} and "
            f"{type(k).__module__}.{type(k).__name__}"
        )
        raise TypeError(msg) from err
    for name, a in own:
        if not isdtype(xp, a.dtype, "numeric"):  # bool is not numeric
            msg = f"{name} must have a numeric dtype; got {_describe(a)}"
            raise TypeError(msg)
    # jax tracers (under jit/vmap/grad) report no device (None): a traced
    # array and a concrete one closed over by the traced function can mix.
    if None not in (device(x), device(k)) and device(x) != device(k):
        msg = (
            f"{x_name} and {k_name} must be on the same device; got "
            f"{device(x)} and {device(k)}"
        )
        raise ValueError(msg)
    return xp


def check_array(name: str, a) -> None:
    """The checks of one operand on its own: an array of an array-API library, of known shape, not a masked one."""
    if not is_array_api_obj(a) or isinstance(a, (list, tuple)):
        msg = (
            f"{name} must be an array of an array-API library (numpy, torch, "
            f"jax, dask, cupy, array_api_strict, ...); got {type(a).__name__}. "
            "Convert it first, e.g. with numpy.asarray."
        )
        raise TypeError(msg)
    if any(d is None or (isinstance(d, float) and math.isnan(d)) for d in a.shape):
        # A lazy array whose sizes are unknown until computed (dask's, after boolean indexing or
        # a filter): every geometry and graph below needs them, so refuse before building any.
        msg = (
            f"{name} has unknown sizes along some axes (shape {tuple(a.shape)}): every size must be "
            f"known before a correlation is planned. Call {name}.compute_chunk_sizes() (dask) "
            "first, or give the sizes when the array is made"
        )
        raise ValueError(msg)
    if _is_masked_array(a):
        # The mask would be ignored (as scipy.signal ignores it): refuse rather than compute with hidden values.
        msg = (
            f"{name} is a numpy masked array (shape {tuple(a.shape)}, dtype {a.dtype}); xcorr would ignore "
            f"its mask. Fill the masked values first, e.g. {name}.filled(0), or pass {name}.data to "
            "use the values under the mask"
        )
        raise TypeError(msg)


def result_dtype(xp, a_dtype, b_dtype, *more):
    """Array-API type promotion, extended to integer-with-floating.

    Within one kind (and between real and complex floating) this is
    ``xp.result_type``. The standard leaves integer-with-floating undefined;
    xcorr takes the floating operand's dtype on every backend (torch's rule),
    so an ``int64`` kernel applied to a ``float32`` image gives ``float32``
    everywhere. More dtypes (an upstream gradient's) fold in the same way.
    """
    if more:
        return result_dtype(xp, result_dtype(xp, a_dtype, b_dtype), *more)
    a_int = isdtype(xp, a_dtype, "integral")
    b_int = isdtype(xp, b_dtype, "integral")
    if a_int != b_int:
        return b_dtype if a_int else a_dtype
    try:
        return xp.result_type(a_dtype, b_dtype)
    except (TypeError, RuntimeError) as err:  # torch promotes uint16/32/64 with nothing
        msg = (
            f"the dtypes {a_dtype} and {b_dtype} have no common result dtype in this library ({err}); "
            "cast one of the arrays to the other's dtype first"
        )
        raise TypeError(msg) from None


def cast_integers(xp, dtype, *arrays):
    """``arrays`` with each integer one cast to the call's floating (or complex) result ``dtype``.

    xcorr's rule (:func:`result_dtype`) gives an integer operand with a floating one the floating
    dtype; the public dispatch casts such an operand once, before any adapter sees it, so that no
    library's own promotion (numpy's: int64 with float32 is float64) can decide the result. A call of
    integers keeps them as they are (their arithmetic wraps in the promoted integer dtype), and so
    do floating operands. None passes through.
    """
    if isdtype(xp, dtype, "integral"):
        return arrays
    return tuple(a if a is None or not isdtype(xp, a.dtype, "integral") else xp.astype(a, dtype) for a in arrays)


def mixes_kinds(xp, dtype, *arrays) -> bool:
    """Whether :func:`cast_integers` casts any of ``arrays`` (an integer one in a floating call)."""
    if isdtype(xp, dtype, "integral"):
        return False
    return any(a is not None and isdtype(xp, a.dtype, "integral") for a in arrays)


@dataclass(frozen=True)
class Options:
    """Normalised, hashable options of one correlation (jax-static friendly)."""

    mode: str = "valid"
    boundary: str = "fill"
    fillvalue: int | float | complex = 0
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    convolve: bool = False
    method: str = "auto"
    # None: the windows follow ``mode``; else "SAME", "SAME_LOWER" or
    # ((top, bottom), (left, right)): a "valid" correlation of x extended by that much.
    padding: str | tuple[tuple[int, int], tuple[int, int]] | None = None

    @classmethod
    def parse(
        cls,
        *,
        mode: object = "valid",
        boundary: object = "fill",
        fillvalue: object = 0,
        stride: object = 1,
        dilation: object = 1,
        convolve: bool = False,
        method: object = "auto",
        padding: object = None,
    ) -> Options:
        mode = parse_mode(mode)
        parsed_padding = parse_padding(padding)
        check_padding_mode(padding, mode)
        fill = parse_fillvalue(fillvalue)
        if boundary == "zeros" and fill != 0:
            msg = f'boundary="zeros" fills with 0 but fillvalue={fillvalue!r}; use boundary="fill" (or "constant")'
            raise ValueError(msg)
        return cls(
            mode=mode,
            boundary=parse_boundary(boundary),
            fillvalue=fill,
            stride=parse_pair("stride", stride),
            dilation=parse_pair("dilation", dilation),
            convolve=convolve,
            method=parse_method(method),
            padding=None if parsed_padding == ((0, 0), (0, 0)) else parsed_padding,
        )


@dataclass(frozen=True)
class AxisPlan:
    """Where the kernel's windows fall along one axis.

    Output element ``i`` reads input positions ``start + i*step + a*dilation``
    for kernel taps ``a = 0 .. taps-1``. Positions outside ``[0, size)`` come
    from the boundary extension.
    """

    size: int
    taps: int
    dilation: int
    step: int
    start: int
    count: int

    @property
    def span(self) -> int:
        """Extent of the dilated kernel."""
        return self.dilation * (self.taps - 1) + 1

    @property
    def lo(self) -> int:
        """First input position read."""
        return self.start

    @property
    def hi(self) -> int:
        """Last input position read (inclusive)."""
        return self.start + (self.count - 1) * self.step + self.span - 1

    @property
    def inside(self) -> bool:
        """Whether every position read lies in ``[0, size)`` (no boundary extension)."""
        return self.lo >= 0 and self.hi < self.size


def plan_axis(
    size: int, taps: int, dilation: int, step: int, mode: str, convolve: bool, pad: tuple[int, int] | None = None
) -> AxisPlan:
    span = dilation * (taps - 1) + 1
    if pad is not None:
        # Explicit padding: the valid correlation of x extended by pad[0] before and pad[1] after it.
        dense = size + pad[0] + pad[1] - span + 1
        return AxisPlan(size, taps, dilation, step, -pad[0], -(-dense // step))
    if mode == "valid":
        dense, offset = size - span + 1, span - 1
    elif mode == "full":
        dense, offset = size + span - 1, 0
    else:
        # scipy's centring: correlate2d's "same" window starts at span // 2 of
        # the full result, convolve2d's at (span - 1) // 2. They differ for
        # even spans, so "same" convolution is not "same" correlation with a
        # flipped kernel.
        dense, offset = size, ((span - 1) // 2 if convolve else span // 2)
    count = -(-dense // step)
    return AxisPlan(size, taps, dilation, step, offset - (span - 1), count)


@dataclass(frozen=True)
class Geometry:
    """Shapes of one correlation: broadcast batch shape and one plan per spatial axis, in order."""

    batch: tuple[int, ...]
    axes: tuple[AxisPlan, ...]

    @property
    def rows(self) -> AxisPlan:
        return self.axes[-2]

    @property
    def cols(self) -> AxisPlan:
        return self.axes[-1]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (*self.batch, *(axis.count for axis in self.axes))

    @property
    def inside(self) -> bool:
        """Whether every window lies inside the input (no boundary extension is read)."""
        return all(axis.inside for axis in self.axes)


@dataclass(frozen=True)
class Call:
    """A validated public call (``xcorr._call.validate``): what every step below the public function takes.

    ``dtype`` is the result's; ``geometry`` that of the (channels-first) correlation; ``groups`` is
    None for a single-plane call.
    """

    xp: Any
    adapter: Any
    dtype: Any
    options: Options
    geometry: Geometry
    groups: int | None = None
    channels_last: bool = False
    #: A transposed call's ``TransposePlan`` (``options`` and ``geometry`` are then its forward
    #: correlation's, on the uncropped extent); None for a correlation.
    transpose: Any = None

    def cast(self, *arrays, cotangent=None):
        """``arrays`` (then ``cotangent``) with each integer one in the call's floating dtype, xcorr's
        rule (:func:`cast_integers`); a cotangent's dtype folds into the result's, as in a VJP."""
        if cotangent is None:
            return cast_integers(self.xp, self.dtype, *arrays)
        return cast_integers(self.xp, result_dtype(self.xp, self.dtype, cotangent.dtype), *arrays, cotangent)


class Like:
    """The shape and dtype of an operand that is not made, or that a step never reads: the
    channels-first view of a channels-last input while it is checked, the forward input of an
    input gradient."""

    def __init__(self, shape: tuple[int, ...], dtype):
        self.shape = shape
        self.dtype = dtype
        self.ndim = len(shape)


def plan(x_shape, k_shape, options: Options) -> Geometry:
    """Check the shapes of ``x`` and ``k`` against ``options`` and place the windows of a 2-D call."""
    for name, shape, dims in (("x", x_shape, "H, W"), ("k", k_shape, "h, w")):
        if len(shape) < 2:
            raise ValueError(f"{name} must have at least 2 dimensions (..., {dims}); got shape {tuple(shape)}")
    if any(n is None for n in (*x_shape, *k_shape)):
        msg = "x and k must have known shapes (dask arrays with unknown chunk sizes: call compute_chunk_sizes first)"
        raise ValueError(msg)
    batch = broadcast_batch(x_shape, k_shape, 2)
    sizes = tuple(x_shape[-2:])
    windows = plan_windows(x_shape, k_shape, sizes, batch, options, options.stride, options.dilation, options.padding)
    return Geometry(batch, windows)


def broadcast_batch(x_shape, k_shape, core: int) -> tuple[int, ...]:
    """The broadcast of the batch dimensions of ``x`` and ``k`` (all but their last ``core``)."""
    a, b = tuple(x_shape[:-core]), tuple(k_shape[:-core])
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    if any(p != q and 1 not in (p, q) for p, q in zip(a, b)):
        msg = (
            f"batch dimensions of x {tuple(x_shape[:-core])} and k {tuple(k_shape[:-core])} do not broadcast "
            f"(x has shape {tuple(x_shape)}, k has shape {tuple(k_shape)})"
        )
        raise ValueError(msg)
    return tuple(q if p == 1 else p for p, q in zip(a, b))  # a 1 stretches, a 0 stays (empty batches)


# The largest stride, dilation, padding width and extent (of the extended image, of the dilated
# kernel, of the output) along one axis: the int32 range. No image or kernel is that long, and far
# larger values crash the backends instead of raising (XLA aborts the process on a padding of 2**40,
# torch's as_strided overflows on a stride of 2**62), so they are refused before any backend call.
MAX_AXIS = 2**31 - 1
# The most elements an output or an extended image may have: 2**48 bytes is the address space of
# 64-bit processors (48-bit virtual addresses), and every element takes at least one byte.
MAX_ELEMENTS = 2**48
#: Each spatial axis's padding ``(before, after)``, in order.
Pads = tuple[tuple[int, int], ...]

#: The spatial dimensions of x, in words, by their number.
SPATIAL = {1: "its length", 2: "its height or width", 3: "its depth, height or width"}


def plan_windows(
    x_shape, k_shape, sizes, batch, options: Options, strides, dilations, padding: str | Pads | None, *, k_name="k"
) -> tuple[AxisPlan, ...]:
    """The windows along each spatial axis of a correlation of ``x_shape`` with ``k_shape``, after every
    check of the shapes against the options, in any number of axes (``len(sizes)``).

    ``sizes`` are x's spatial sizes (its last axes, or a channels-last input's), the last axes of
    ``k_shape`` its taps and ``batch`` the broadcast batch (for the elements' limit). ``padding`` is
    None (the windows of ``options.mode``), a name of lax's ("SAME", "SAME_LOWER") or each axis's
    ``(before, after)``. Messages name the axis where there are several.
    """
    n = len(sizes)
    taps = tuple(k_shape[-n:])
    if 0 in taps:
        raise ValueError(f"{k_name} must not be empty; got kernel shape {tuple(k_shape)}")
    if 0 in sizes:
        raise ValueError(f"x must not be empty in {SPATIAL[n]}; got shape {tuple(x_shape)}")
    spans = tuple(d * (t - 1) + 1 for t, d in zip(taps, dilations))
    if isinstance(padding, str):
        pads: Pads | None = tuple(lax_pads(padding, size, e, s) for size, e, s in zip(sizes, spans, strides))
    else:
        pads = padding
    where = [f" along the {name}" for name in AXIS_NAMES[n]] if n > 1 else [""]
    shapes = f"of shape {tuple(k_shape)} does not fit in x of shape {tuple(x_shape)}"
    for i, (size, e, d) in enumerate(zip(sizes, spans, dilations)):
        what = "kernel" if d == 1 else f"dilated kernel (extent {e})"
        if pads is not None and e > size + sum(pads[i]):
            padded = size + sum(pads[i])
            msg = f"{k_name} is larger than the padded x{where[i]}: {what} {shapes} padded by {pads[i]} ({padded}); pad more"
            raise ValueError(msg)
        if pads is None and options.mode == "valid" and e > size:
            msg = f'{k_name} is larger than x in "valid" mode{where[i]}: {what} {shapes}; use mode="same" or "full"'
            raise ValueError(msg)
    widths = () if pads is None else tuple(max(p) for p in pads)
    given_pads = padding if isinstance(padding, str) else pads
    for name, values, given in (("stride", strides, strides), ("dilation", dilations, dilations), ("padding", widths, given_pads)):
        if values and max(values) > MAX_AXIS:
            limit = f"beyond xcorr's limit of 2**31 - 1 = {MAX_AXIS} per axis (the int32 range)"
            raise ValueError(f"{name}={given!r}: {max(values)} is {limit}")
    if max(spans) > MAX_AXIS:
        msg = (
            f"the dilated kernel's extent {spans} (kernel of shape {tuple(k_shape)}, dilation "
            f"{tuple(dilations)}) is beyond xcorr's limit of 2**31 - 1 = {MAX_AXIS} per axis"
        )
        raise ValueError(msg)
    windows = tuple(
        plan_axis(size, t, d, s, options.mode, options.convolve, None if pads is None else pads[i])
        for i, (size, t, d, s) in enumerate(zip(sizes, taps, dilations, strides))
    )
    extended = tuple(max(w.hi, w.size - 1) - min(w.lo, 0) + 1 for w in windows)
    for what, shape in (("x extended by the boundary", extended), ("the output", tuple(w.count for w in windows))):
        if max(shape) > MAX_AXIS or math.prod(batch) * math.prod(shape) > MAX_ELEMENTS:
            msg = (
                f"{what} would have shape {(*batch, *shape)} (x of shape {tuple(x_shape)} and {k_name} of shape "
                f"{tuple(k_shape)} with this padding/mode, stride and dilation): beyond xcorr's limits of "
                f"2**31 - 1 = {MAX_AXIS} per axis and 2**48 = {MAX_ELEMENTS} elements in all (no 64-bit "
                "address space holds more bytes)"
            )
            raise ValueError(msg)
    if options.boundary == "reflect":
        for i, w in enumerate(windows):
            if w.size == 1 and not w.inside:
                msg = (
                    f'boundary="reflect" cannot extend x of shape {tuple(x_shape)}{where[i]}: it has 1 element'
                    f'{" there" if n > 1 else ""}, and mirroring without repeating the edge needs at least 2; '
                    'boundary="edge" or "symm" repeat that element'
                )
                raise ValueError(msg)
    return windows


def check_integral_fill(xp, dtype, fillvalue) -> int | float | complex:
    """Check ``fillvalue`` against the result ``dtype``; return it as that dtype holds it.

    Integer dtypes take integral values inside their range (``ValueError``
    naming the value and the range otherwise: the backends would wrap, clip
    or raise, each differently). Real dtypes reject complex values. Floating
    dtypes take any real value: one beyond the dtype's largest finite value
    rounds as IEEE arithmetic rounds it (to that value, or to an infinity
    past half an ulp above it), computed here once so that every backend
    fills with the same number.
    """
    if isdtype(xp, dtype, "integral"):
        if not (isinstance(fillvalue, int) or (isinstance(fillvalue, float) and fillvalue.is_integer())):
            msg = f"fillvalue {fillvalue!r} cannot be represented in the integer result dtype {dtype}"
            raise ValueError(msg)
        info = xp.iinfo(dtype)
        if not info.min <= fillvalue <= info.max:
            msg = (
                f"fillvalue {fillvalue!r} is out of the range of the integer result dtype {dtype} "
                f"[{info.min}, {info.max}]"
            )
            raise ValueError(msg)
        return fillvalue
    if not isdtype(xp, dtype, "complex floating") and isinstance(fillvalue, complex):
        msg = f"fillvalue {fillvalue!r} is complex but the result dtype {dtype} is real"
        raise ValueError(msg)
    if not isdtype(xp, dtype, ("real floating", "complex floating")):
        return fillvalue
    info = xp.finfo(dtype)
    if isinstance(fillvalue, complex):
        return complex(_round_overflow(fillvalue.real, info), _round_overflow(fillvalue.imag, info))
    return _round_overflow(fillvalue, info)


def _round_overflow(value, info):
    """``value`` rounded to a floating dtype where it lies beyond the dtype's finite range.

    In range (or NaN) it is returned unchanged (the backends round it on
    their own, all alike); beyond it, round-to-nearest gives the largest
    finite value below ``max + ulp(max) / 2`` and infinity from there on.
    """
    big = float(info.max)
    try:
        magnitude = abs(float(value))
    except OverflowError:  # a Python int beyond float64
        magnitude = math.inf
    if not magnitude > big:
        return value
    eps = float(info.eps)  # 2**(1 - precision); ulp(max) = max * eps / (2 - eps)
    threshold = Fraction(big) + Fraction(big) * Fraction(eps) / (2 * (2 - Fraction(eps)))
    rounded = math.inf if magnitude == math.inf or Fraction(magnitude) >= threshold else big
    return -rounded if value < 0 else rounded
