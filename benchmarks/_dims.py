"""The 1-D and 3-D table of ``python -m benchmarks`` (issue 23): xcorr's 1-D and 3-D functions
against each backend's own convolution in the same number of dimensions, float32, forward and
forward+backward (each fwd+bwd call computes the output and both gradients), interleaved medians.

Cases: one long signal with a 31-tap kernel, and volumes with a 3x3x3 and an 11x11x11 kernel (the
single-channel rows: numpy's native is ``scipy.signal.correlate`` / ``scipy.ndimage.correlate``), and a
multi-channel layer of each (``F.conv1d`` / ``F.conv3d`` on torch, ``lax.conv_general_dilated`` on
jax; numpy has none, so its layer rows have no ratio), large and small: a small layer's call is
mostly the fixed cost of checking and dispatching it. Each timed sample of the other cases follows
an untimed call of the same candidate (``measure(..., warm_each=True)``): xcorr's torch and jax
layers run the natives' own operations, and without it the two identical calls differed by up to
4x, by whether their output's pages were still mapped after the candidate timed before them.
"""

from __future__ import annotations

import numpy as np

import xcorr

# (label, x shape, k shape, multi-channel)
CASES = (
    ("signal 2^20, 31 taps", (1 << 20,), (31,), False),
    ("1-D layer N=8, 64->64, L=4096, 3 taps", (8, 64, 4096), (64, 64, 3), True),
    ("small 1-D layer N=1, 4->4, L=64, 3 taps", (1, 4, 64), (4, 4, 3), True),
    ("volume 96³, 3x3x3", (96, 96, 96), (3, 3, 3), False),
    ("volume 40³, 11x11x11", (40, 40, 40), (11, 11, 11), False),
    ("3-D layer N=2, 16->16, 32³, 3x3x3", (2, 16, 32, 32, 32), (16, 16, 3, 3, 3), True),
    ("small 3-D layer N=1, 4->4, 8³, 3x3x3", (1, 4, 8, 8, 8), (4, 4, 3, 3, 3), True),
)
# scipy's native for a volume: ``ndimage.correlate`` (a direct filter) for small kernels, and
# ``signal.correlate`` (which takes the FFT for large ones) above this many taps.
NDIMAGE_MAX_TAPS = 27
# Cases of microseconds per call: timed as back-to-back calls (``measure_small``), where a call's
# fixed cost (argument checks, dispatch) is what the row shows.
SMALL = frozenset(label for label, *_ in CASES if label.startswith("small"))


def _ours(case):
    _, x_shape, _, multi = case
    one_d = len(x_shape) == (3 if multi else 1)
    if multi:
        return (xcorr.corr1d_multi, xcorr.corr1d_multi_vjp) if one_d else (xcorr.corr3d_multi, xcorr.corr3d_multi_vjp)
    return (xcorr.corr1d, xcorr.corr1d_vjp) if one_d else (xcorr.corr3d, xcorr.corr3d_vjp)


def _numpy(case, x, k, g):
    fwd, vjp = _ours(case)
    candidates = {"xcorr fwd": lambda: fwd(x, k), "xcorr fwd+bwd": lambda: (fwd(x, k), vjp(x, k, g))}
    if case[3]:
        return candidates, None
    import scipy.ndimage
    import scipy.signal

    if x.ndim == 1 or k.size > NDIMAGE_MAX_TAPS:
        candidates["native fwd"] = lambda: scipy.signal.correlate(x, k, mode="valid")
        return candidates, "signal.correlate"
    r = [n // 2 for n in k.shape]  # ndimage centres the kernel: keep the windows that lie inside
    crop = tuple(slice(c, n - (t - 1 - c)) for c, n, t in zip(r, x.shape, k.shape))
    candidates["native fwd"] = lambda: scipy.ndimage.correlate(x, k, mode="constant")[crop]
    return candidates, "ndimage.correlate"


def _torch(case, x_np, k_np, g_np):
    import torch
    import torch.nn.functional as F

    fwd, _ = _ours(case)
    multi, dims = case[3], len(case[2]) - (2 if case[3] else 0)
    native = F.conv1d if dims == 1 else F.conv3d
    x, k, g = (torch.from_numpy(a) for a in (x_np, k_np, g_np))

    def as_native(f):  # single-channel: one batch and channel axis around the signal or volume
        if multi:
            return f
        return lambda x, k: f(x[None, None], k[None, None])[0, 0]

    ours, theirs = fwd, as_native(native)
    xr, kr = x.clone().requires_grad_(True), k.clone().requires_grad_(True)

    def no_grad(f):
        def run():
            with torch.no_grad():
                return f(x, k)

        return run

    def backward(f):
        def run():
            xr.grad = kr.grad = None
            f(xr, kr).backward(g)

        return run

    candidates = {
        "xcorr fwd": no_grad(ours), "native fwd": no_grad(theirs),
        "xcorr fwd+bwd": backward(ours), "native fwd+bwd": backward(theirs),
    }  # fmt: skip
    return candidates, native.__name__


def _jax(case, x_np, k_np, g_np, forward_backward):
    import jax
    from jax import lax

    fwd, _ = _ours(case)
    multi, dims = case[3], len(case[2]) - (2 if case[3] else 0)
    x, k, g = (jax.device_put(a) for a in (x_np, k_np, g_np))

    def native(x, k):
        if multi:
            return lax.conv_general_dilated(x, k, (1,) * dims, "VALID")
        return lax.conv_general_dilated(x[None, None], k[None, None], (1,) * dims, "VALID")[0, 0]

    fo, fn = jax.jit(fwd), jax.jit(native)
    bo, bn = forward_backward(fwd, g), forward_backward(native, g)
    candidates = {
        "xcorr fwd": lambda: fo(x, k).block_until_ready(), "native fwd": lambda: fn(x, k).block_until_ready(),
        "xcorr fwd+bwd": lambda: bo(x, k), "native fwd+bwd": lambda: bn(x, k),
    }  # fmt: skip
    return candidates, "lax.conv"


def dims_table(report, backends, repeats: int, *, measure, measure_small, ms, forward_backward) -> None:
    """One table per backend: each case's forward and forward+backward against the native."""
    rng = np.random.default_rng(0)
    for backend in backends:
        table = report.table(
            f"{backend}.dims",
            f"{backend}: 1-D and 3-D (ms, median of {repeats}; each fwd+bwd call computes y, gx and gk)",
            ["case", "pass", "xcorr", "native", "ratio"],
            "llrrr",
        )
        for case in CASES:
            label, x_shape, k_shape, _ = case
            x = rng.standard_normal(x_shape, dtype=np.float32)
            k = rng.standard_normal(k_shape, dtype=np.float32) / np.float32(np.prod(k_shape[-3:]))
            out = _ours(case)[0](x, k)
            g = rng.standard_normal(tuple(out.shape), dtype=np.float32)
            if backend == "numpy":
                candidates, native = _numpy(case, x, k, g)
            elif backend == "torch":
                candidates, native = _torch(case, x, k, g)
            else:
                candidates, native = _jax(case, x, k, g, forward_backward)
            if label in SMALL:
                times = measure_small(candidates, repeats)
            else:  # each sample after an untimed call of its own: a layer's calls repeat in a loop
                times = measure(candidates, repeats, warm_each=True)
            for which in ("fwd", "fwd+bwd"):
                ours, theirs = times.get(f"xcorr {which}"), times.get(f"native {which}")
                ratio = None if theirs is None else ours / theirs
                table.row(
                    [label, which, ms(ours), f"{native} {ms(theirs)}" if theirs else "—",
                     "—" if ratio is None else f"{ratio:.2f}"],
                    {"case": label, "pass": which, "xcorr_s": ours, "native": native if theirs else None,
                     "native_s": theirs, "ratio": ratio},
                )  # fmt: skip
