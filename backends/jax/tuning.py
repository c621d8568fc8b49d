"""The jax adapter's cost model and the thresholds of its fast paths."""

from __future__ import annotations

from dataclasses import dataclass

from ...toolkit import Costs, Tuning

try:
    from .._numba import MIN_OUTPUTS, THREADED_WORK
except ImportError:  # the optional numba path removed: its thresholds are never read
    MIN_OUTPUTS = THREADED_WORK = 0


@dataclass(frozen=True)
class JaxTuning(Tuning):
    """The jax adapter's cost model and thresholds (``python -m benchmarks``, float32, CPU, 2 cores)."""

    costs: Costs = Costs(call=50e3, per_output=0.3, per_tap=0.1, fft_call=500e3, fft_point=0.4)
    # numba's kernels as XLA custom calls (backends/_jax_numba.py): whether
    # they run, from how many outputs, and from how many products threaded
    # (the numpy adapter's defaults, backends/_numba.py).
    numba: bool = True
    numba_min_outputs: int = MIN_OUTPUTS
    numba_threaded_work: int = THREADED_WORK
    # Fully unrolled shift-and-add up to this many kernel taps (PERF-NOTES: the
    # unrolled form is fastest to 15x15 and far slower at 21x21); a fori_loop
    # over kernel rows beyond.
    unroll_taps: int = 225
    # Kernels of up to this many taps read a fill extension through one pad per
    # tap (fused by XLA); larger ones through one extension (see ops._tap_windows).
    pad_per_tap: int = 12
    # Where numba's kernel gradient does not apply, the direct kernel gradient
    # as one native convolution on the CPU (faster than XLA's h*w reductions).
    native_kernel_gradient: bool = True
    # corr2d_multi's "auto" on the CPU: grouped convolutions of up to this many input channels
    # per group (depthwise ones: 1) take the direct method, not lax.conv_general_dilated, whose
    # CPU grouped convolution is far slower there, forward and backward (python -m benchmarks,
    # "grouped" rows). 0: always the native convolution.
    grouped_direct_channels: int = 16
    # conv_transpose2d (and the 1-D and 3-D ones, which call it) on the CPU: grouped transposed
    # convolutions of up to this many input channels per group take the generic adjoint (xcorr's
    # direct method), not lax's grouped convolution; wider groups gain forward but lose in the
    # backward (python -m benchmarks.grouped, "transposed" rows). 0: always lax.
    grouped_transpose_direct_channels: int = 2
