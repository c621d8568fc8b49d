"""The torch adapter's cost model and the thresholds of its fast paths."""

from __future__ import annotations

from dataclasses import dataclass

from ...toolkit import Costs, Tuning

try:
    from .._numba import MIN_OUTPUTS as _NUMBA_MIN_OUTPUTS
    from .._numba import THREADED_WORK as _NUMBA_THREADED_WORK
except ImportError:  # the optional numba path removed
    _NUMBA_MIN_OUTPUTS, _NUMBA_THREADED_WORK = 1 << 14, 1 << 21


@dataclass(frozen=True)
class TorchTuning(Tuning):
    """The torch adapter's cost model and thresholds (``python -m benchmarks``, float32, 2 cores)."""

    costs: Costs = Costs(call=100e3, per_output=0.8, per_tap=0.14, fft_call=500e3, fft_point=0.35)
    # Output elements per band of rows in the CPU direct path: the band and the
    # input rows it reads stay in L2 while every kernel tap passes over them.
    band_elements: int = 1 << 18
    # Below pooled_elements output elements one band is at most small_band
    # elements, so that torch runs each op on the calling thread: torch's
    # OpenMP split of medium-sized ops costs more than it gains, and on a
    # loaded machine its barrier waits for descheduled threads.
    pooled_elements: int = 1 << 18
    small_band: int = 1 << 15
    # Small direct calls of real floats with at least gathered_min_taps taps whose windows
    # (outputs times taps, batch included) take at most gathered_bytes gather every window into
    # one matrix and take one vector-matrix product: fewer taps are as few ops on the loop, and
    # above gathered_bytes the copy leaves the cache and a slice and an add per tap wins again.
    gathered_min_taps: int = 3
    gathered_bytes: int = 1 << 21
    # "Few outputs": each output has at least this many times more taps than
    # there are outputs (a kernel gradient): banded dot products, not F.conv2d.
    few_outputs: int = 64
    # Kernels of at least this many elements take the banded, threaded form.
    pooled_kernel: int = 1 << 21
    # Elements of g per bmm call in kernel_gradient: bmm's cost is per call
    # and per batch row, so bands are large.
    gradient_band: int = 1 << 20
    # Planes smaller than this (g elements) leave the kernel gradient to
    # few_outputs/F.conv2d: there one bmm per plane and column shift costs
    # more in calls than it saves.
    gradient_min_plane: int = 1 << 12
    # numba's forward kernel on CPU float32/float64 tensors (ops.numba_forward; numba installed):
    # whether it runs, from how many outputs, and from how many products (outputs x taps) it
    # splits its rows between threads (the numpy adapter's defaults).
    numba: bool = True
    numba_min_outputs: int = _NUMBA_MIN_OUTPUTS
    numba_threaded_work: int = _NUMBA_THREADED_WORK
