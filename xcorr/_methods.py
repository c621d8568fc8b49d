"""How a correlation is computed: the method names and the cost model behind ``method="auto"``.

Every constant of the model lives in ``COSTS`` below, one row per backend, in
nanoseconds. They were fitted to ``python -m benchmarks`` on the machine named
in the README (2 cores, float32); rerun it and refit them on other hardware.

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
shift-and-add's stays per output element). On eager backends (everything but
jax and dask) ``auto`` also checks, when it picked ``fft``, that the inputs
are finite: a NaN or inf would spread over the whole FFT result, so such
inputs go ``direct``. Under ``jax.jit`` and on lazy dask arrays values cannot
be looked at; there ``method="direct"`` keeps NaN/inf local.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass

from ._compat import isdtype

METHODS: tuple[str, ...] = ("auto", "direct", "fft", "native")
# Backends whose adapter has a native convolution for method="native".
NATIVE: frozenset[str] = frozenset({"torch", "jax"})


def parse_method(method: object) -> str:
    if not isinstance(method, str) or method not in METHODS:
        msg = f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}"
        raise ValueError(msg)
    return method


@dataclass(frozen=True)
class Costs:
    """Time model of one backend, in nanoseconds (see the module docstring)."""

    call: float  # fixed cost of a direct call
    per_output: float  # direct: per output element (allocation, first write)
    per_tap: float  # direct: per output element and kernel tap
    fft_call: float  # fixed cost of an FFT call
    fft_point: float  # FFT: per transform point and log2(points), per plane
    min_fft_taps: int = 16  # never FFT below this many kernel taps
    fft_margin: float = 1.2  # FFT must be this many times faster to be taken


# Fitted on the README's machine (AMD EPYC, 2 cores), float32, valid mode, from
# medians of interleaved runs of each method at 256², 1024², 4096² with 3x3 to
# 31x31 kernels (see the README's Performance section). GPU rows are not
# calibrated (no GPU was available): they keep the CPU crossover of the same
# library. "generic" is any other array-API library (array_api_strict, ...).
COSTS: dict[str, Costs] = {
    "numpy": Costs(call=100e3, per_output=0.6, per_tap=0.3, fft_call=300e3, fft_point=0.45),
    # numpy's direct path through the numba kernel (numba installed, 2-D kernel,
    # at least NUMBA_MIN_OUTPUTS outputs): about 8x cheaper per tap.
    "numpy+numba": Costs(call=100e3, per_output=0.6, per_tap=0.04, fft_call=300e3, fft_point=0.45),
    "torch": Costs(call=100e3, per_output=0.8, per_tap=0.14, fft_call=500e3, fft_point=0.35),
    "jax": Costs(call=50e3, per_output=0.3, per_tap=0.1, fft_call=500e3, fft_point=0.4),
    "dask": Costs(call=100e3, per_output=0.6, per_tap=0.3, fft_call=300e3, fft_point=0.45),
    "cupy": Costs(call=20e3, per_output=0.01, per_tap=0.01, fft_call=40e3, fft_point=0.01),
    "generic": Costs(call=20e3, per_output=1.0, per_tap=1.5, fft_call=60e3, fft_point=1.5),
}
# numpy direct correlations with at least this many outputs (batch included)
# go through the numba kernel when numba is installed (backends/_numba.py);
# smaller ones stay on the numpy path and never import numba. jax on the CPU
# uses the same kernels as XLA custom calls from this size (backends/_jax_numba.py).
NUMBA_MIN_OUTPUTS = 1 << 14
# ... and split their rows between threads from this many products (outputs x taps).
NUMBA_THREADED_WORK = 1 << 21
# jax's direct correlations with every window inside the input take numba's
# kernel from outputs of this many bytes (a fresh mapping each call, given
# huge pages by the handler; backends/jax.py:_numba_forward), XLA's fused code below.
NUMBA_JAX_FRESH_OUTPUT_BYTES = 1 << 25
# Transform sizes built from these primes are fast in every FFT library we use.
FFT_PRIMES: tuple[int, ...] = (2, 3, 5, 7)


@functools.cache
def numba_installed() -> bool:
    """Whether numba can be imported (looked up without importing it)."""
    return importlib.util.find_spec("numba") is not None


def costs(backend: str) -> Costs:
    return COSTS.get(backend, COSTS["generic"])


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


def _planes(shape) -> int:
    return math.prod(shape[:-2]) if len(shape) > 2 else 1


def estimate(backend: str, method: str, x_shape, k_shape, geometry) -> float:
    """Estimated time in ns of ``method`` on ``backend`` (direct or fft)."""
    c = costs(backend)
    rows, cols = geometry.rows, geometry.cols
    planes = math.prod(geometry.batch) if geometry.batch else 1
    if method == "direct":
        out = planes * rows.count * cols.count
        return c.call + out * (c.per_output + rows.taps * cols.taps * c.per_tap)
    n = fft_shape(geometry)
    points = n[0] * n[1]
    transforms = _planes(x_shape) + _planes(k_shape) + planes
    return c.fft_call + c.fft_point * points * math.log2(max(points, 2)) * transforms / 2


def fft_shape(geometry, size=good_size) -> tuple[int, int]:
    """FFT size: the extent of the extended input that the windows read."""
    rows, cols = geometry.rows, geometry.cols
    return (size(rows.hi - rows.lo + 1), size(cols.hi - cols.lo + 1))


def choose_method(backend: str, dtype_kind: str, x_shape, k_shape, geometry) -> str:
    """The method ``auto`` takes: "direct" or "fft".

    ``dtype_kind`` is "integral", "real floating", "complex floating" or
    "other" (float16, bfloat16 and anything without an accurate FFT).
    """
    if dtype_kind not in ("real floating", "complex floating"):
        return "direct"
    if backend == "numpy" and len(k_shape) == 2 and _numba_outputs(geometry) and numba_installed():
        backend = "numpy+numba"
    c = costs(backend)
    if geometry.rows.taps * geometry.cols.taps < c.min_fft_taps:
        return "direct"
    direct = estimate(backend, "direct", x_shape, k_shape, geometry)
    fft = estimate(backend, "fft", x_shape, k_shape, geometry)
    return "fft" if fft * c.fft_margin < direct else "direct"


def _numba_outputs(geometry) -> bool:
    outputs = math.prod(geometry.batch) * geometry.rows.count * geometry.cols.count
    return outputs >= NUMBA_MIN_OUTPUTS


def dtype_kind(xp, dtype) -> str:
    """The kind ``choose_method`` needs: FFT-safe floating dtypes are float32/64 and complex."""
    if isdtype(xp, dtype, "integral"):
        return "integral"
    if isdtype(xp, dtype, "complex floating"):
        return "complex floating"
    if dtype in (xp.float32, xp.float64):
        return "real floating"
    return "other"
