"""How a correlation is computed: the method names and the cost model behind ``method="auto"``.

The constants of the model are one ``Costs`` row per adapter, in nanoseconds,
kept in the adapter's ``tuning`` (``xcorr.backends.<library>``). They were
fitted to ``python -m benchmarks`` on the machine named in the README (2
cores, float32); rerun it and refit them on other hardware.

The model, like ``scipy.signal.choose_conv_method``, compares an estimate of
each method's time and takes the smallest:

``direct``  shift-and-add over the kernel taps, computing only the strided
            outputs: ``call + out * (per_output + taps * per_tap)``,
            ``out`` = output elements (batch included).
``fft``     one real FFT of the extended input, one of the (dilated) kernel,
            one inverse, at good transform sizes ``Hf x Wf`` (no padding in
            "valid" mode): ``call + fft_point * Hf*Wf*log2(Hf*Wf) * (bx + bk + b)``
            with ``bx``, ``bk``, ``b`` the numbers of input, kernel and output
            planes. It computes every dense output, whatever the stride.
``native``  the library's own convolution (``torch.nn.functional.conv2d``,
            ``jax.lax.conv_general_dilated``). On one plane it is 10-100x
            slower than shift-and-add on the CPU, so ``auto`` takes it only for
            multi-channel layers, where it is a GEMM (see ``corr2d_multi``).

``auto`` never takes ``fft`` for integer inputs (the result must stay exact),
for dtypes without an accurate FFT (float16, bfloat16), below ``min_fft_taps``
kernel taps, or when the FFT would not win by the margin ``fft_margin`` (the
FFT's rounding error grows with the largest values in the image, while
shift-and-add's stays per output element). On eager libraries (adapters with
``eager = True``; not lazy dask or traced jax arrays) ``auto`` also checks, when it picked ``fft``, that the inputs
are finite: a NaN or inf would spread over the whole FFT result, so such
inputs go ``direct``. Where values cannot be looked at when the method is chosen (lazy
dask arrays, traced jax arrays) the adapter's ``prepare_auto_fft`` keeps the rule "auto never
changes which outputs are non-finite": jax chooses inside the program (``lax.cond``),
dask block by block, other adapters go ``direct``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._compat import isdtype

METHODS: tuple[str, ...] = ("auto", "direct", "fft", "native")


@dataclass(frozen=True)
class Costs:
    """Time model of ``method="auto"`` on one library, in nanoseconds (see ``xcorr._cost_model``).

    Parameters
    ----------
    call : float
        Fixed cost of a direct call.
    per_output : float
        Direct: per output element (allocation, first write).
    per_tap : float
        Direct: per output element and kernel tap.
    fft_call : float
        Fixed cost of an FFT call.
    fft_point : float
        FFT: per transform point and log2(points), per plane.
    min_fft_taps : int, default 16
        Never take the FFT below this many kernel taps.
    fft_margin : float, default 1.2
        The FFT must be this many times faster than direct to be taken.

    Examples
    --------
    >>> import xcorr
    >>> xcorr.Costs(call=20e3, per_output=1.0, per_tap=1.5, fft_call=60e3, fft_point=1.5)
    Costs(call=20000.0, per_output=1.0, per_tap=1.5, fft_call=60000.0, fft_point=1.5, min_fft_taps=16, fft_margin=1.2)
    """

    call: float  # fixed cost of a direct call
    per_output: float  # direct: per output element (allocation, first write)
    per_tap: float  # direct: per output element and kernel tap
    fft_call: float  # fixed cost of an FFT call
    fft_point: float  # FFT: per transform point and log2(points), per plane
    min_fft_taps: int = 16  # never FFT below this many kernel taps
    fft_margin: float = 1.2  # FFT must be this many times faster to be taken


def parse_method(method: object) -> str:
    if not isinstance(method, str) or method not in METHODS:
        msg = f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}"
        raise ValueError(msg)
    return method


# Transform sizes built from these primes are fast in every FFT library we use.
FFT_PRIMES: tuple[int, ...] = (2, 3, 5, 7)


def good_size(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are all in ``FFT_PRIMES``."""
    best = 1
    while best < n:
        best *= 2
    # Enumerate smooth numbers below the next power of two.
    stack = [1]
    seen = {1}
    while stack:
        m = stack.pop()
        if m >= n:
            best = min(best, m)
            continue
        for p in FFT_PRIMES:
            q = m * p
            if q < best and q not in seen:
                seen.add(q)
                stack.append(q)
    return best


def _planes(shape, axes: int) -> int:
    """The number of planes (or volumes) of an array of ``shape`` with ``axes`` spatial axes."""
    return math.prod(shape[:-axes]) if len(shape) > axes else 1


def estimate(c: Costs, method: str, x_shape, k_shape, geometry) -> float:
    """Estimated time in ns of ``method`` (direct or fft) under cost model ``c``, in the geometry's
    number of spatial axes (a plane's points are then a volume's)."""
    axes = geometry.axes
    planes = math.prod(geometry.batch) if geometry.batch else 1
    if method == "direct":
        out = planes * math.prod(a.count for a in axes)
        return c.call + out * (c.per_output + math.prod(a.taps for a in axes) * c.per_tap)
    points = math.prod(fft_shape(geometry))
    transforms = _planes(x_shape, len(axes)) + _planes(k_shape, len(axes)) + planes
    return c.fft_call + c.fft_point * points * math.log2(max(points, 2)) * transforms / 2


def fft_shape(geometry, size=good_size) -> tuple[int, ...]:
    """FFT size: the extent of the extended input that the windows read, per spatial axis."""
    return tuple(size(a.hi - a.lo + 1) for a in geometry.axes)


def choose_method(c: Costs, dtype_kind: str, x_shape, k_shape, geometry) -> str:
    """The method ``auto`` takes under cost model ``c``: "direct" or "fft".

    ``dtype_kind`` is "integral", "real floating", "complex floating" or
    "other" (float16, bfloat16 and anything without an accurate FFT).
    """
    if dtype_kind not in ("real floating", "complex floating"):
        return "direct"
    if math.prod(a.taps for a in geometry.axes) < c.min_fft_taps:
        return "direct"
    direct = estimate(c, "direct", x_shape, k_shape, geometry)
    fft = estimate(c, "fft", x_shape, k_shape, geometry)
    return "fft" if fft * c.fft_margin < direct else "direct"


def concrete_method(adapter, method: str, dtype_kind: str, x_shape, k_shape, geometry) -> str:
    """``method`` itself, or for "auto" the one :func:`choose_method` picks under ``adapter.costs``.

    It does not look at values: where "auto" picks "fft" on an eager library the caller
    still checks that the inputs are finite.
    """
    if method != "auto":
        return method
    costs = adapter.costs(tuple(k_shape), geometry)
    return choose_method(costs, dtype_kind, tuple(x_shape), tuple(k_shape), geometry)


def dtype_kind(xp, dtype) -> str:
    """The kind ``choose_method`` needs: FFT-safe floating dtypes are float32/64 and complex."""
    if isdtype(xp, dtype, "integral"):
        return "integral"
    if isdtype(xp, dtype, "complex floating"):
        return "complex floating"
    if dtype in (xp.float32, xp.float64):
        return "real floating"
    return "other"


@dataclass(frozen=True)
class Tuning:
    """An adapter's tuning: its cost model row and the thresholds of its fast paths.

    Subclasses (one per adapter, next to it) add their own thresholds, each
    with a note of where its value came from. Tests and users change them per
    adapter instance: ``dataclasses.replace(adapter.tuning, ...)``.

    Parameters
    ----------
    costs : Costs, optional
        The adapter's row of the cost model of ``method="auto"``; the
        default is a neutral row whose FFT crossover is numpy's.

    Examples
    --------
    >>> import dataclasses
    >>> import xcorr
    >>> tuning = xcorr.Tuning()
    >>> dataclasses.replace(tuning, costs=dataclasses.replace(tuning.costs, min_fft_taps=4)).costs.min_fft_taps
    4
    """

    # Fitted with ``python -m benchmarks`` on the README's machine for the
    # framework adapters; any other array-API library gets this neutral row,
    # whose FFT crossover is that of numpy's.
    costs: Costs = Costs(call=20e3, per_output=1.0, per_tap=1.5, fft_call=60e3, fft_point=1.5)
