"""``python -m benchmarks``: xcorr against each backend's own convolution.

One process, interleaved repeats, medians; float32, valid-mode correlation.
For each backend it prints a Markdown table: xcorr's time (``method="auto"``,
with the method it chose), the fastest native alternative on that backend,
their ratio, and the peak extra resident memory of both. Then forward+backward
rows (both passes in every timed call), the small-call rows (microseconds per
call against the native call), a small CNN's training step, the seed's double
loop and the bandwidth floor.

    python -m benchmarks                      # everything (about 15 minutes on 2 cores)
    python -m benchmarks --backends numpy --sizes 256,1024 --repeats 3
    python -m benchmarks --only-small         # small calls and the CNN step only (about 1 minute)
    python -m benchmarks --json results.json  # also write every row to a JSON file
    python -m benchmarks --only-limit         # only the copy / forward / forward+backward "limit" table,
                                              # and the extra memory of those calls
    python -m benchmarks --only-dims          # only the 1-D and 3-D rows against the natives
    python -m benchmarks --only-memory        # only the extra memory of the limit table's calls
    python -m benchmarks --only-limit --limit-sizes 1024,4096,8192 --sweep  # and the size/kernel sweep
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata as md
import json
import math
import platform
import sys
import time

import numpy as np

import xcorr
from xcorr import _cost_model
from xcorr._options import Options, plan
from xcorr._registry import adapter_named

from . import _dims, _limit, _memory
from ._timing import (
    SMALL_MIN_REPEATS,
    cores,
    cpu_model,
    load,
    load_average,
    machine,
    measure,
    measure_small,
    peak_extra_bytes,
)

KERNELS = ((1, 2), (3, 3), (7, 7), (31, 31))
# Direct native methods (no FFT) are not run where outputs x taps exceed this:
# 4096^2 with 31x31 would take 10-60 s per call and is never the fastest.
DIRECT_WORK_LIMIT = 2e9
LAYER = (8, 64, 64, 56, 3)  # N, C_in, C_out, H=W, kernel
# The small CNN of issue 10: batch, image side, classes, learning rate.
CNN = (100, 8, 10, 0.05)


# -- output: Markdown on stdout, the same rows for --json -----------------------------


class Report:
    """Prints Markdown tables and keeps every row (numbers unrounded) for ``--json``."""

    def __init__(self, out):
        self.out = out
        self.tables: list[dict] = []
        self.notes: list[str] = []

    def text(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def note(self, line: str, *, attach: bool = True) -> None:
        self.notes.append(line)
        if attach and self.tables:  # a note speaks of the table printed before it
            self.tables[-1]["notes"].append(line)
        self.text(f"\n{line}")

    def table(self, key: str, title: str, columns: list[str], align: str) -> Table:
        table = Table(self, key, title, columns, align)
        self.tables.append(table.data)
        self.text(f"\n### {title}\n")
        self.text("| " + " | ".join(columns) + " |")
        self.text("|" + "|".join("---:" if a == "r" else "---" for a in align) + "|")
        return table


class Table:
    def __init__(self, report: Report, key: str, title: str, columns: list[str], align: str):
        self.report = report
        # rows: the numbers (seconds, unrounded); cells: the same rows as printed
        self.data = {"key": key, "title": title, "columns": columns, "align": align, "rows": [], "cells": [],
                     "notes": []}

    def row(self, cells: list[str], values: dict) -> None:
        self.report.text("| " + " | ".join(cells) + " |")
        self.data["rows"].append(values)
        self.data["cells"].append(list(cells))


class Case:
    def __init__(self, label, x_shape, k_shape):
        self.label, self.x_shape, self.k_shape = label, x_shape, k_shape

    @property
    def work(self) -> float:
        h, w = self.k_shape[-2:]
        H, W = self.x_shape[-2:]
        return math.prod(self.x_shape[:-2]) * (H - h + 1) * (W - w + 1) * h * w

    def chosen(self, backend: str) -> str:
        geometry = plan(self.x_shape, self.k_shape, Options())
        adapter = adapter_named(backend)
        costs = adapter.costs(self.k_shape, geometry)
        method = _cost_model.choose_method(costs, "real floating", self.x_shape, self.k_shape, geometry)
        if backend == "numpy" and method == "direct" and numba_direct(geometry):
            return "direct (numba)"
        return method


def numba_direct(geometry) -> bool:
    """Whether numpy's direct path runs the numba kernel (backends/_numba.py) for this float32 case."""
    from xcorr.backends import _numba

    tuning = adapter_named("numpy").tuning
    outputs = math.prod(geometry.out_shape)
    return tuning.numba and outputs >= tuning.numba_min_outputs and _numba._kernels() is not None


def single_cases(sizes) -> list[Case]:
    cases = [Case(f"{n}² {h}x{w}", (n, n), (h, w)) for n in sizes for h, w in KERNELS]
    cases += [Case(f"16x256² {h}x{w}", (16, 256, 256), (h, w)) for h, w in KERNELS]
    return cases


def backward_cases(sizes) -> list[Case]:
    cases = [Case(f"{n}² {h}x{w}", (n, n), (h, w)) for n in sizes if n >= 1024 for h, w in ((3, 3), (31, 31))]
    return [*cases, Case("16x256² 3x3", (16, 256, 256), (3, 3))]


def data(case: Case, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape, dtype=dtype)
    k = rng.standard_normal(case.k_shape, dtype=dtype)
    return x, k


def ms(seconds) -> str:
    if seconds is None:
        return "—"
    value = seconds * 1e3
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def us(seconds) -> str:
    value = seconds * 1e6
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def mb(nbytes) -> str:
    if nbytes is None:
        return "—"
    value = nbytes / 2**20
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def samples_note(timings, repeats: int) -> str:
    """Empty when every candidate got ``repeats`` samples (the header's count), else the counts."""
    counts = {name: timings.count(name) for name in timings.median}
    if all(n == repeats for n in counts.values()):
        return ""
    return " (samples: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"


# -- natives per backend --------------------------------------------------------------
# Each returns {name: callable(x, k) -> result} for arrays of that backend, and
# the conversion from numpy.


def numpy_natives(case: Case):
    import scipy.ndimage as ndi
    import scipy.signal as sig

    def per_image(f):
        return lambda x, k: f(x, k) if x.ndim == 2 else np.stack([f(xi, k) for xi in x])

    h, w = case.k_shape

    def flip(x, k):  # convolution with the flipped kernel, batch axes broadcast
        return k[::-1, ::-1].reshape((1,) * (x.ndim - 2) + k.shape)

    def ndimage(x, k):
        weights = k if x.ndim == 2 else k[None]
        y = ndi.correlate(x, weights, mode="constant")
        return y[..., h // 2 : h // 2 + x.shape[-2] - h + 1, w // 2 : w // 2 + x.shape[-1] - w + 1]

    natives = {
        "signal.correlate2d": per_image(lambda x, k: sig.correlate2d(x, k, "valid")),
        "ndimage.correlate": ndimage,
        "signal.fftconvolve": lambda x, k: sig.fftconvolve(x, flip(x, k), "valid", axes=(-2, -1)),
        "signal.oaconvolve": lambda x, k: sig.oaconvolve(x, flip(x, k), "valid", axes=(-2, -1)),
    }
    if case.work > DIRECT_WORK_LIMIT:
        for name in ("signal.correlate2d", "ndimage.correlate"):
            natives[name] = None
    return natives


def torch_natives(case: Case):
    import torch
    import torch.nn.functional as F

    def conv(x, k):
        with torch.no_grad():
            y = F.conv2d(x.reshape(-1, 1, *x.shape[-2:]), k.reshape(1, 1, *k.shape))
        return y.reshape(*x.shape[:-2], *y.shape[-2:])

    return {"F.conv2d": conv}  # its only native: always run (4096² 31x31: a few seconds)


def jax_natives(case: Case):
    import jax
    import jax.scipy.signal as jsig
    from jax import lax

    def conv(x, k):
        y = lax.conv_general_dilated(x.reshape(-1, 1, *x.shape[-2:]), k.reshape(1, 1, *k.shape), (1, 1), "VALID")
        return y.reshape(*x.shape[:-2], *y.shape[-2:])

    def per_image(f):
        return lambda x, k: f(x, k) if x.ndim == 2 else jax.vmap(f, in_axes=(0, None))(x, k)

    fft = per_image(lambda x, k: jsig.fftconvolve(x, k[::-1, ::-1], mode="valid"))
    natives = {
        "lax.conv": jax.jit(conv),
        "jsp.correlate2d": jax.jit(per_image(lambda x, k: jsig.correlate2d(x, k, mode="valid"))),
        "jsp.fftconvolve": jax.jit(fft),
    }
    if case.work > DIRECT_WORK_LIMIT:
        natives["lax.conv"] = natives["jsp.correlate2d"] = None
    return natives


NATIVES = {"numpy": numpy_natives, "torch": torch_natives, "jax": jax_natives}


def converters(backend: str):
    if backend == "torch":
        import torch

        return torch.from_numpy, lambda y: y
    if backend == "jax":
        import jax

        return jax.device_put, lambda y: y.block_until_ready()
    return (lambda a: a), (lambda y: y)


# -- the tables -----------------------------------------------------------------------


def forward_table(report: Report, backend: str, cases, repeats: int) -> list[tuple[str, float, float | None]]:
    to, done = converters(backend)
    if backend == "jax":
        import jax

        # The natives are jitted functions; so is xcorr here (its kernels are
        # jitted inside, but an eager call adds about 0.5 ms of dispatch).
        jitted_corr2d = jax.jit(xcorr.corr2d)
    natives_of = NATIVES[backend]
    table = report.table(
        f"{backend}.forward",
        f"{backend}: forward (ms, median of {repeats})",
        ["case", "xcorr (auto)", "method", "fastest native", "native", "ratio", "xcorr peak MB", "native peak MB"],
        "lrllrrrr",
    )
    rows = []
    for case in cases:
        x_np, k_np = data(case)
        x, k = to(x_np), to(k_np)
        natives = natives_of(case)
        skipped = [name for name, f in natives.items() if f is None]
        runnable = {name: f for name, f in natives.items() if f is not None}
        ours = jitted_corr2d if backend == "jax" else xcorr.corr2d
        candidates = {"xcorr": lambda ours=ours, x=x, k=k: done(ours(x, k))}
        for name, f in runnable.items():
            candidates[name] = lambda f=f, x=x, k=k: done(f(x, k))
        reference = np.asarray(candidates["xcorr"]())
        for name in runnable:  # every alternative computes the same thing
            atol = 2e-3 * math.sqrt(case.work / reference.size)
            np.testing.assert_allclose(np.asarray(candidates[name]()), reference, rtol=2e-3, atol=atol)
        times = measure(candidates, repeats)
        best = min(runnable, key=times.get)
        ratio = times["xcorr"] / times[best]
        peak = peak_extra_bytes(candidates["xcorr"])
        native_peak = peak_extra_bytes(candidates[best])
        note = f" ({', '.join(skipped)} not run: > 10 s)" if skipped else ""
        table.row(
            [case.label, ms(times["xcorr"]), case.chosen(backend), f"{best}{note}{samples_note(times, repeats)}",
             ms(times[best]), f"{ratio:.2f}", mb(peak), mb(native_peak)],
            {"case": case.label, "xcorr_s": times["xcorr"], "method": case.chosen(backend), "native": best,
             "native_s": times[best], "ratio": ratio, "xcorr_peak_bytes": peak, "native_peak_bytes": native_peak,
             "natives_s": {name: times[name] for name in runnable}, "not_run": skipped,
             "samples": {name: times.count(name) for name in candidates}},
        )
        rows.append((case.label, times["xcorr"], ratio))
    return rows


def backward_table(report: Report, backend: str, cases, repeats: int):
    table = report.table(
        f"{backend}.forward_backward",
        f"{backend}: forward + backward (ms, median of {repeats}; each fwd+bwd call computes y, gx and gk)",
        ["case", "xcorr fwd", "xcorr fwd+bwd", "fwd+bwd / fwd", "native", "native fwd+bwd", "ratio to native"],
        "lrrrlrr",
    )
    for case in cases:
        x_np, k_np = data(case)
        g_np = np.random.default_rng(1).standard_normal(
            (*case.x_shape[:-2], case.x_shape[-2] - case.k_shape[-2] + 1, case.x_shape[-1] - case.k_shape[-1] + 1),
            dtype=np.float32,
        )
        fwd, both, native_name, native = _backward_candidates(backend, case, x_np, k_np, g_np)
        candidates = {"fwd": fwd, "both": both}
        if native is not None:
            candidates["native"] = native
        times = measure(candidates, repeats)
        nat = times.get("native")
        ratio = None if nat is None else times["both"] / nat
        table.row(
            [case.label, ms(times["fwd"]), ms(times["both"]), f"{times['both'] / times['fwd']:.2f}",
             (native_name or "—") + samples_note(times, repeats), ms(nat), "—" if ratio is None else f"{ratio:.2f}"],
            {"case": case.label, "xcorr_fwd_s": times["fwd"], "xcorr_fwd_bwd_s": times["both"],
             "fwd_bwd_over_fwd": times["both"] / times["fwd"], "native": native_name, "native_fwd_bwd_s": nat,
             "ratio": ratio, "samples": {name: times.count(name) for name in candidates}},
        )


def jax_forward_backward(f, g):
    """Jitted ``(y, gx, gk)`` of ``f`` at cotangent ``g``: the forward and both gradients.

    ``jax.vjp`` under one ``jax.jit``, the forward's output returned, so that
    XLA cannot drop the forward as dead code (``jax.grad`` alone may: its
    program only needs the residuals). ``g`` is an argument, not a
    closed-over constant that XLA would fold.
    """
    import jax

    def run(x, k, g):
        y, pullback = jax.vjp(f, x, k)
        return (y, *pullback(g))

    compiled = jax.jit(run)
    return lambda x, k: jax.block_until_ready(compiled(x, k, g))


def _backward_candidates(backend, case, x_np, k_np, g_np):
    if backend == "numpy":
        def fwd():
            return xcorr.corr2d(x_np, k_np)

        def both():
            return xcorr.corr2d(x_np, k_np), xcorr.corr2d_vjp(x_np, k_np, g_np)

        return fwd, both, None, None
    if backend == "torch":
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(x_np).requires_grad_(True)
        k = torch.from_numpy(k_np).requires_grad_(True)
        g = torch.from_numpy(g_np)

        def fwd():
            with torch.no_grad():
                return xcorr.corr2d(x, k)

        def both():  # forward (recorded) and backward in one timed call
            x.grad = k.grad = None
            xcorr.corr2d(x, k).backward(g)

        def native():
            x.grad = k.grad = None
            xb = x.reshape(-1, 1, *x.shape[-2:])
            y = F.conv2d(xb, k.reshape(1, 1, *k.shape))
            y.reshape(g.shape).backward(g)

        return fwd, both, "F.conv2d", (None if case.work > DIRECT_WORK_LIMIT else native)
    import jax
    from jax import lax

    x, k, g = jax.device_put(x_np), jax.device_put(k_np), jax.device_put(g_np)

    def conv(x, k):
        y = lax.conv_general_dilated(x.reshape(-1, 1, *x.shape[-2:]), k.reshape(1, 1, *k.shape), (1, 1), "VALID")
        return y.reshape(g.shape)

    xboth, nboth = jax_forward_backward(xcorr.corr2d, g), jax_forward_backward(conv, g)
    forward = jax.jit(xcorr.corr2d)
    return (
        lambda: forward(x, k).block_until_ready(),
        lambda: xboth(x, k),
        "lax.conv",
        None if case.work > DIRECT_WORK_LIMIT else (lambda: nboth(x, k)),
    )


def layer_table(report: Report, backend: str, repeats: int):
    """Multi-channel layer: corr2d_multi against the framework's GEMM convolution."""
    n, cin, cout, size, ks = LAYER
    label = f"N={n}, {cin}->{cout}, {size}², {ks}x{ks}"
    if not hasattr(xcorr, "corr2d_multi"):
        report.note(f"(layer {label}: xcorr.corr2d_multi not available)")
        return
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, cin, size, size), dtype=np.float32)
    w_np = rng.standard_normal((cout, cin, ks, ks), dtype=np.float32) / 24
    g_np = rng.standard_normal((n, cout, size - ks + 1, size - ks + 1), dtype=np.float32)
    candidates = {}
    if backend == "torch":
        import torch
        import torch.nn.functional as F

        x, w, g = (torch.from_numpy(a) for a in (x_np, w_np, g_np))
        xr, wr = x.clone().requires_grad_(True), w.clone().requires_grad_(True)

        def no_grad(f):
            def run():
                with torch.no_grad():
                    return f()

            return run

        def backward(f):
            def run():
                xr.grad = wr.grad = None
                f(xr, wr).backward(g)

            return run

        candidates = {
            "xcorr fwd": no_grad(lambda: xcorr.corr2d_multi(x, w)),
            "native fwd": no_grad(lambda: F.conv2d(x, w)),
            "xcorr fwd+bwd": backward(xcorr.corr2d_multi),
            "native fwd+bwd": backward(F.conv2d),
        }
        native = "F.conv2d"
    elif backend == "jax":
        import jax
        from jax import lax

        x, w, g = (jax.device_put(a) for a in (x_np, w_np, g_np))

        def conv(x, w):
            return lax.conv_general_dilated(x, w, (1, 1), "VALID")

        fx, fn = jax.jit(xcorr.corr2d_multi), jax.jit(conv)
        gx, gn = jax_forward_backward(xcorr.corr2d_multi, g), jax_forward_backward(conv, g)
        candidates = {
            "xcorr fwd": lambda: fx(x, w).block_until_ready(),
            "native fwd": lambda: fn(x, w).block_until_ready(),
            "xcorr fwd+bwd": lambda: gx(x, w),
            "native fwd+bwd": lambda: gn(x, w),
        }
        native = "lax.conv"
    else:
        candidates = {"xcorr fwd": lambda: xcorr.corr2d_multi(x_np, w_np)}
        if hasattr(xcorr, "corr2d_multi_vjp"):
            candidates["xcorr fwd+bwd"] = lambda: (
                xcorr.corr2d_multi(x_np, w_np),
                xcorr.corr2d_multi_vjp(x_np, w_np, g_np),
            )
        native = None
    times = measure(candidates, repeats)
    table = report.table(
        f"{backend}.layer",
        f"{backend}: multi-channel layer {label} (ms, median of {repeats})",
        ["pass", "xcorr", "native", "ratio"],
        "lrrr",
    )
    for which in ("fwd", "fwd+bwd"):
        ours, theirs = times.get(f"xcorr {which}"), times.get(f"native {which}")
        if ours is None:
            continue
        ratio = None if theirs is None else ours / theirs
        table.row(
            [which, ms(ours), f"{(native + ' ') if theirs else ''}{ms(theirs)}", "—" if ratio is None else f"{ratio:.2f}"],
            {"pass": which, "xcorr_s": ours, "native": native if theirs else None, "native_s": theirs, "ratio": ratio},
        )
    report.note(f"memory, xcorr forward: {mb(peak_extra_bytes(candidates['xcorr fwd']))} MB peak extra")


# -- small calls and the small CNN (issue 10) ------------------------------------------

SMALL_CASES = (
    ("6x8 [[1, -1]]", (6, 8), np.array([[1.0, -1.0]])),
    ("64² 3x3", (64, 64), None),
)


def small_inputs(shape, kernel):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    k = rng.standard_normal((3, 3)) if kernel is None else kernel
    return x, k


def small_candidates(backend: str, x_np, k_np):
    """``{name: (fn, result)}``: xcorr's eager call first, then the native calls of ``backend``."""
    h, w = k_np.shape
    if backend == "numpy":
        import scipy.ndimage as ndi
        import scipy.signal as sig

        def ndimage():
            y = ndi.correlate(x_np, k_np, mode="constant")
            return y[h // 2 : h // 2 + x_np.shape[0] - h + 1, w // 2 : w // 2 + x_np.shape[1] - w + 1]

        c = {
            "xcorr.corr2d": lambda: xcorr.corr2d(x_np, k_np),
            "signal.correlate2d": lambda: sig.correlate2d(x_np, k_np, "valid"),
        }
        if k_np.shape == (3, 3):
            c["ndimage.correlate"] = ndimage
        return c, np.asarray
    if backend == "torch":
        import torch
        import torch.nn.functional as F

        x, k = torch.from_numpy(x_np), torch.from_numpy(k_np)

        def conv():
            return F.conv2d(x[None, None], k[None, None])[0, 0]

        return {"xcorr.corr2d": lambda: xcorr.corr2d(x, k), "F.conv2d": conv}, lambda y: y.numpy()
    import jax
    from jax import lax

    x, k = jax.device_put(x_np), jax.device_put(k_np)

    @jax.jit
    def conv(x, k):
        return lax.conv_general_dilated(x[None, None], k[None, None], (1, 1), "VALID")[0, 0]

    return (
        {
            "xcorr.corr2d (eager)": lambda: xcorr.corr2d(x, k).block_until_ready(),
            "jit(lax.conv)": lambda: conv(x, k).block_until_ready(),
        },
        np.asarray,
    )


def small_table(report: Report, backends, repeats: int):
    if "jax" in backends:  # float64 rows need jax's 64-bit mode (the tables before are float32 without it)
        import jax

        jax.config.update("jax_enable_x64", True)
    table = report.table(
        "small_calls",
        f"Small calls, float64 (µs per call, median of {max(repeats, SMALL_MIN_REPEATS)} samples of back-to-back calls)",
        ["case", "backend", "xcorr", "xcorr µs", "native", "native µs", "ratio"],
        "lllrlrr",
    )
    for label, shape, kernel in SMALL_CASES:
        x_np, k_np = small_inputs(shape, kernel)
        expected = np.array(
            [[np.sum(x_np[i : i + k_np.shape[0], j : j + k_np.shape[1]] * k_np) for j in range(shape[1] - k_np.shape[1] + 1)]
             for i in range(shape[0] - k_np.shape[0] + 1)]
        )
        for backend in backends:
            candidates, to_numpy = small_candidates(backend, x_np, k_np)
            for fn in candidates.values():  # every call computes the same valid correlation
                np.testing.assert_allclose(to_numpy(fn()), expected, rtol=1e-12, atol=1e-12)
            times = measure_small(candidates, repeats)
            ours, *natives = candidates
            for native in natives:
                ratio = times[ours] / times[native]
                table.row(
                    [label, backend, ours, us(times[ours]), native, us(times[native]), f"{ratio:.2f}"],
                    {"case": label, "backend": backend, "xcorr": ours, "xcorr_s": times[ours], "native": native,
                     "native_s": times[native], "ratio": ratio,
                     "calls_per_sample": {ours: times.calls_per_sample[ours], native: times.calls_per_sample[native]},
                     "samples": times.count(ours)},
                )


def cnn_table(report: Report, backends, repeats: int):
    """One SGD step of a small CNN with xcorr.Conv2D layers against the same network of native layers."""
    batch, side, classes, lr = CNN
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 1, side, side)).astype(np.float32)
    labels = rng.integers(0, classes, batch)
    table = report.table(
        "cnn_step",
        f"Small CNN training step (ms per step, median of {max(repeats, SMALL_MIN_REPEATS)} samples of back-to-back steps)",
        ["backend", "xcorr step ms", "native", "native step ms", "ratio"],
        "lrlrr",
    )
    runs = [(b, _torch_cnn if b == "torch" else _jax_cnn) for b in backends if b in ("torch", "jax")]
    if "torch" in backends:
        for pair in (("xcorr", "xcorr eager"), ("native", "native eager"), ("xcorr", "native")):
            runs.append(("torch compiled", functools.partial(_torch_cnn_compiled, pair=pair)))
    for backend, make in runs:
        steps, native = make(images, labels, classes, lr)
        times = measure_small(steps, repeats)
        ratio = times["xcorr"] / times["native"]
        table.row(
            [backend, ms(times["xcorr"]), native, ms(times["native"]), f"{ratio:.2f}"],
            {"backend": backend, "xcorr_s": times["xcorr"], "native": native, "native_s": times["native"],
             "ratio": ratio, "calls_per_sample": times.calls_per_sample, "samples": times.count("xcorr")},
        )
    report.note(
        f"Network: batch {batch} of {side}x{side} single-channel float32 images; Conv2D(3, 1->8, mode='same'), relu, "
        f"Conv2D(3, 8->16, mode='same', stride=2), relu, flatten, linear to {classes} classes, cross-entropy, one SGD "
        f"step (lr {lr}). Native: the same layers with padding 1 (stride 2, padding 1 for the second); xcorr's strided "
        "'same' keeps every second output of the centred result, which is what padding 1 with stride 2 computes: "
        "the two networks, given the same weights, give the same outputs (checked before timing). "
        "jax: the whole step (value_and_grad and the update) under one jax.jit on both sides. "
        "'torch compiled': a network's step under torch.compile(fullgraph=True) (forward and loss in one graph, "
        "AOTAutograd's backward) against the same step eager (the xcorr network's, and for comparison "
        "nn.Conv2d's), and the two compiled steps against each other."
    )


def _torch_cnn(images, labels, classes, lr):
    import torch
    import torch.nn.functional as F
    from torch import nn

    side = images.shape[-1]
    flat = 16 * ((side + 1) // 2) ** 2

    def network(conv1, conv2):
        return nn.Sequential(conv1, nn.ReLU(), conv2, nn.ReLU(), nn.Flatten(), nn.Linear(flat, classes))

    ours = network(
        xcorr.Conv2D(3, in_channels=1, out_channels=8, mode="same", backend="torch"),
        xcorr.Conv2D(3, in_channels=8, out_channels=16, mode="same", stride=2, backend="torch"),
    )
    theirs = network(nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2, padding=1))
    theirs.load_state_dict(ours.state_dict())
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)

    def step(model):
        opt = torch.optim.SGD(model.parameters(), lr=lr)

        def run():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

        run.model = model
        return run

    return {"xcorr": step(ours), "native": step(theirs)}, "nn.Conv2d"


def _torch_cnn_compiled(images, labels, classes, lr, pair=("xcorr", "xcorr eager")):
    """Two training steps of ``pair``: "xcorr" or "native" compiled (one graph, no break),
    or "xcorr eager" / "native eager" (the network's eager step)."""
    import torch
    import torch.nn.functional as F

    steps, _ = _torch_cnn(images, labels, classes, lr)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)

    def compiled_step(model):
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        # The forward and the loss in one graph; AOTAutograd compiles their backward.
        compiled = torch.compile(lambda: F.cross_entropy(model(x), y), fullgraph=True)

        def run():
            opt.zero_grad()
            compiled().backward()
            opt.step()

        return run

    def make(which):
        if which.endswith(" eager"):
            return steps[which.removesuffix(" eager")]
        return compiled_step(steps[which].model)

    labels = {
        ("xcorr", "xcorr eager"): "xcorr eager",
        ("native", "native eager"): "nn.Conv2d eager (both nn.Conv2d)",
        ("xcorr", "native"): "nn.Conv2d compiled",
    }
    ours, theirs = pair
    return {"xcorr": make(ours), "native": make(theirs)}, labels[pair]


def _jax_cnn(images, labels, classes, lr):
    import jax
    import jax.numpy as jnp
    from jax import lax

    side = images.shape[-1]
    flat = 16 * ((side + 1) // 2) ** 2
    rng = np.random.default_rng(1)
    dense = {
        "w": jnp.asarray(rng.uniform(-1, 1, (flat, classes)).astype(np.float32) / math.sqrt(flat)),
        "b": jnp.zeros(classes, dtype=jnp.float32),
    }
    conv1 = xcorr.Conv2D(3, in_channels=1, out_channels=8, mode="same", backend="jax")
    conv2 = xcorr.Conv2D(3, in_channels=8, out_channels=16, mode="same", stride=2, backend="jax")
    ours = {"conv1": conv1, "conv2": conv2, **dense}
    theirs = {
        "w1": conv1.weight, "b1": conv1.bias, "w2": conv2.weight, "b2": conv2.bias, **dense,
    }

    def head(params, h, y):
        logits = h.reshape(h.shape[0], -1) @ params["w"] + params["b"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    def loss_ours(params, x, y):
        h = jax.nn.relu(params["conv1"](x))
        h = jax.nn.relu(params["conv2"](h))
        return h, head(params, h, y)

    def native_conv(x, w, b, stride):
        y = lax.conv_general_dilated(x, w, (stride, stride), ((1, 1), (1, 1)))
        return y + b[None, :, None, None]

    def loss_theirs(params, x, y):
        h = jax.nn.relu(native_conv(x, params["w1"], params["b1"], 1))
        h = jax.nn.relu(native_conv(h, params["w2"], params["b2"], 2))
        return h, head(params, h, y)

    x, y = jnp.asarray(images), jnp.asarray(labels)
    np.testing.assert_allclose(
        np.asarray(jax.jit(loss_ours)(ours, x, y)[0]), np.asarray(jax.jit(loss_theirs)(theirs, x, y)[0]), rtol=1e-5, atol=1e-5
    )

    def step(loss, params):
        def update(params, x, y):
            value, grads = jax.value_and_grad(lambda p: loss(p, x, y)[1])(params)
            return value, jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)

        update = jax.jit(update)
        state = {"params": params}

        def run():
            value, state["params"] = update(state["params"], x, y)
            value.block_until_ready()

        return run

    return {"xcorr": step(loss_ours, ours), "native": step(loss_theirs, theirs)}, "lax.conv_general_dilated"


# -- the seed's loop and the bandwidth floor ---------------------------------------------


def seed_and_floor(report: Report, repeats: int, best_4096_3x3: dict[str, float]):
    import torch

    def seed_corr2d(X, K):  # the seed notebook's loop, verbatim
        h, w = K.shape
        Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
        for i in range(Y.shape[0]):
            for j in range(Y.shape[1]):
                Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
        return Y

    x_np, k_np = data(Case("", (256, 256), (3, 3)))
    x, k = torch.from_numpy(x_np), torch.from_numpy(k_np)
    start = time.perf_counter()
    seed_corr2d(x, k)
    seed = time.perf_counter() - start
    # Steady state, as the loop runs: 20 back-to-back calls per sample.
    fast = measure({"xcorr": lambda: [xcorr.corr2d(x, k) for _ in range(20)]}, repeats)["xcorr"] / 20
    table = report.table(
        "seed_loop",
        "The seed's double loop (torch, 256² 3x3, one run)",
        ["seed loop", "xcorr (torch, 20 calls in a row)", "speed-up"],
        "rrr",
    )
    table.row([ms(seed), ms(fast), f"{seed / fast:,.0f}x"], {"seed_s": seed, "xcorr_s": fast, "speedup": seed / fast})
    floor_table(report, repeats, best_4096_3x3)


def floor_table(report: Report, repeats: int, best_4096_3x3: dict[str, float]):
    """Bandwidth floor: a copy of the 4096² float32 input into a preallocated output."""
    a = data(Case("", (4096, 4096), (1, 1)))[0]
    b = np.empty_like(a)
    copies = {"numpy copyto": lambda: np.copyto(b, a)}
    try:
        import torch
    except ImportError:
        pass
    else:
        src, dst = torch.from_numpy(a), torch.from_numpy(b.copy())
        copies["torch copy_"] = lambda: dst.copy_(src)
    copies = measure(copies, repeats)
    floor = min(copies.median.values())
    gbs = 2 * a.size * 4 / floor / 1e9
    note = (f"Bandwidth floor, 4096² 3x3 float32: a copy of the input to a preallocated output takes "
            f"{ms(floor)} ms ({gbs:.0f} GB/s read+write).")
    report.note(note, attach=False)  # printed before the table it belongs to
    if not best_4096_3x3:  # no 4096² forward rows in this run to set against the floor
        return
    table = report.table("floor", "Bandwidth floor, 4096² 3x3 float32", ["backend", "xcorr 4096² 3x3", "/ floor"], "lrr")
    table.data["notes"].append(note)
    for backend, t in best_4096_3x3.items():
        table.row([backend, ms(t), f"{t / floor:.1f}"], {"backend": backend, "xcorr_s": t, "floor_s": floor, "ratio": t / floor})


VERSION_NAMES = ["numpy", "scipy", "numba", "torch", "jax", "jaxlib", "dask", "array-api-compat"]


def versions() -> dict[str, str]:
    found = {}
    for name in VERSION_NAMES:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,torch,jax", help="comma-separated: numpy, torch, jax")
    parser.add_argument("--sizes", default="256,1024,4096", help="image sizes (square)")
    parser.add_argument("--repeats", type=int, default=5, help="timed samples per candidate")
    parser.add_argument("--no-backward", action="store_true", help="skip the forward+backward tables")
    parser.add_argument(
        "--only-backward", action="store_true", help="only the forward+backward tables (single-plane cases)"
    )
    parser.add_argument(
        "--only-small", action="store_true", help="only the small-call and small-CNN rows (about a minute)"
    )
    parser.add_argument("--no-small", action="store_true", help="skip the small-call and small-CNN rows")
    parser.add_argument(
        "--only-limit", action="store_true", help="only the limit table (copy, forward, forward+backward)"
    )
    parser.add_argument("--no-limit", action="store_true", help="skip the limit table")
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the memory table (extra memory of the limit table's calls)"
    )
    parser.add_argument("--only-memory", action="store_true", help="only the memory table")
    parser.add_argument("--only-dims", action="store_true", help="only the 1-D and 3-D rows against the natives")
    parser.add_argument("--no-dims", action="store_true", help="skip the 1-D and 3-D rows")
    parser.add_argument(
        "--limit-sizes", default=",".join(map(str, _limit.LIMIT_SIZES)), help="image sizes of the limit table"
    )
    parser.add_argument("--sweep", action="store_true", help="also the sweep: forward time per output element")
    parser.add_argument("--sweep-sizes", default=",".join(map(str, _limit.SWEEP_SIZES)), help="image sizes of the sweep")
    parser.add_argument(
        "--sweep-kernels", default=",".join(f"{h}x{w}" for h, w in _limit.SWEEP_KERNELS), help="kernels of the sweep"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every table's rows to this JSON file")
    args = parser.parse_args(argv)
    if args.only_small and (args.only_backward or args.no_small):
        parser.error("--only-small cannot be combined with --only-backward or --no-small")
    if args.only_limit and (args.only_small or args.only_backward or args.no_limit):
        parser.error("--only-limit cannot be combined with --only-small, --only-backward or --no-limit")
    if args.only_dims and (args.only_small or args.only_backward or args.only_limit or args.no_dims):
        parser.error("--only-dims cannot be combined with another --only-* or with --no-dims")
    if args.only_memory and (args.only_small or args.only_backward or args.only_limit or args.only_dims or args.no_memory):
        parser.error("--only-memory cannot be combined with another --only-* or with --no-memory")
    limit_sizes = [int(s) for s in args.limit_sizes.split(",")]
    sweep_sizes = [int(s) for s in args.sweep_sizes.split(",")]
    sweep_kernels = [tuple(int(v) for v in s.split("x")) for s in args.sweep_kernels.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in NATIVES]
    if unknown:
        parser.error(f"--backends takes numpy, torch, jax; got {', '.join(unknown)}")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = load_average()
    report = Report(sys.stdout)
    found = versions()
    report.text(f"## xcorr benchmarks, {started.date().isoformat()}\n")
    report.text(f"Machine: {machine()}; {load()} at the start.  ")
    report.text(f"Versions: Python {platform.python_version()}, {', '.join(f'{k} {v}' for k, v in found.items())}.  ")
    report.text("float32, single-channel valid-mode correlation unless stated; ratio = xcorr / native.")
    best_4096: dict[str, float] = {}
    if "numpy" in backends:  # load numba's cached kernels outside the timed warm-ups
        xcorr.corr2d(*data(Case("", (256, 256), (3, 3))))
    limit = dict(data=data, Case=Case, ms=ms)
    if args.only_memory:
        _memory.memory_table(report, backends, limit_sizes)
    elif args.only_dims:
        _dims.dims_table(
            report, backends, args.repeats, measure=measure, measure_small=measure_small, ms=ms,
            forward_backward=jax_forward_backward,
        )
    elif args.only_limit or not (args.only_small or args.only_backward or args.no_limit):
        _limit.limit_table(report, backends, limit_sizes, args.repeats, samples_note=samples_note, threads=cores(),
                           **limit)
        if not args.no_memory:
            _memory.memory_table(report, backends, limit_sizes)
    if args.sweep:
        _limit.sweep_table(report, backends, sweep_sizes, sweep_kernels, args.repeats, **limit)
    if not (args.only_small or args.only_limit or args.only_dims or args.only_memory):
        for backend in backends:
            if args.only_backward:
                backward_table(report, backend, backward_cases(sizes), args.repeats)
                continue
            rows = forward_table(report, backend, single_cases(sizes), args.repeats)
            ratios = [r for _, _, r in rows]
            report.note(
                f"{backend}: median ratio {np.median(ratios):.2f}, worst {max(ratios):.2f} "
                f"({rows[int(np.argmax(ratios))][0]})"
            )
            for label, t, _ in rows:
                if label == "4096² 3x3":
                    best_4096[backend] = t
            layer_table(report, backend, args.repeats)
            if not args.no_backward and hasattr(xcorr, "corr2d_vjp"):
                backward_table(report, backend, backward_cases(sizes), args.repeats)
    if not (args.no_dims or args.only_dims or args.only_small or args.only_backward or args.only_limit or args.only_memory):
        _dims.dims_table(
            report, backends, args.repeats, measure=measure, measure_small=measure_small, ms=ms,
            forward_backward=jax_forward_backward,
        )
    if not (args.no_small or args.only_backward or args.only_limit or args.only_dims or args.only_memory):
        small_table(report, backends, args.repeats)
        cnn_table(report, backends, args.repeats)
    if args.only_backward or args.only_small or args.only_limit or args.only_dims or args.only_memory:
        pass
    elif "torch" in backends:
        seed_and_floor(report, args.repeats, best_4096)
    elif best_4096:
        floor_table(report, args.repeats, best_4096)
    report.text(f"\n{load()} at the end.")
    if args.json:
        finished = datetime.datetime.now(datetime.timezone.utc)
        result = {
            "started": started.isoformat(timespec="seconds"),
            "finished": finished.isoformat(timespec="seconds"),
            "command": ["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)],
            "machine": {"cpu": cpu_model(), "cores": cores(), "platform": platform.platform()},
            "load_average": {"start": load_start, "end": load_average()},
            "python": platform.python_version(),
            "versions": found,
            "xcorr_version": xcorr.__version__ if hasattr(xcorr, "__version__") else None,
            "repeats": args.repeats,
            "tables": report.tables,
            "notes": report.notes,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
