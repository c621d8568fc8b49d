"""The "limit" table and the size/kernel sweep of ``python -m benchmarks`` (issue 24).

Limit: per backend and size, float32 single-plane valid-mode correlation with
small kernels against the memory-bandwidth yardstick, one copy of the image
for every backend: numpy's ``np.multiply(x, 1.0, out=y)`` in row bands over
the machine's cores, into a preallocated output ("copy") and into a new one
each call ("fresh copy", the floor of a call returning a new array). The
forward is ``corr2d`` (jitted on jax, without autograd on torch); the
forward+backward is one timed call that computes the output and both
gradients (numpy: ``corr2d`` and ``corr2d_vjp``; torch: the recorded forward
and ``backward(g)``; jax: ``jax.value_and_grad`` of ``sum(corr2d(x, k) * g)``
with respect to both, jitted). Copy, forward and forward+backward of one
case are timed interleaved (``_timing.measure``).

Sweep: forward time per output element over image sizes and kernels, with
the method ``method="auto"`` picks, one backend after another.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

import xcorr

LIMIT_SIZES = (1024, 4096)
LIMIT_KERNELS = ((3, 3), (5, 5))
SWEEP_SIZES = (256, 512, 1024, 2048, 4096)
SWEEP_KERNELS = ((1, 2), (3, 3), (5, 5), (7, 7), (11, 11), (15, 15), (21, 21), (31, 31))


def _threaded_copy(x, y, threads: int):
    """``np.multiply(x, 1.0, out=y)`` in ``threads`` bands of rows at once (numpy's ufuncs release the GIL)."""
    n = x.shape[0]
    bounds = [n * i // threads for i in range(threads + 1)]
    bands = [(bounds[i], bounds[i + 1]) for i in range(threads) if bounds[i + 1] > bounds[i]]
    pool = ThreadPoolExecutor(max(1, len(bands) - 1))

    def band(lo, hi):
        np.multiply(x[lo:hi], 1.0, out=y[lo:hi])

    def run():
        futures = [pool.submit(band, lo, hi) for lo, hi in bands[1:]]
        band(*bands[0])
        for f in futures:
            f.result()

    return run


def _fresh_copy(x, threads: int):
    """``_threaded_copy`` into a new array each call: the floor of any call that returns a fresh
    output, whose pages the kernel must fault in (and zero) as they are first written."""

    def run():
        y = np.empty_like(x)
        _threaded_copy(x, y, threads)()
        return y

    return run


def candidates(backend: str, x_np, k_np, g_np, threads: int):
    """``{"copy", "fresh copy", "fwd", "fwd+bwd"}``: zero-argument calls, each finishing its work
    before it returns. The copies are numpy's, the same yardstick in every backend's rows."""
    copies = {"copy": _threaded_copy(x_np, np.empty_like(x_np), threads), "fresh copy": _fresh_copy(x_np, threads)}
    return copies | _backend_calls(backend, x_np, k_np, g_np)


def _backend_calls(backend: str, x_np, k_np, g_np):
    """``{"fwd", "fwd+bwd"}`` of one backend."""
    if backend == "numpy":
        return {
            "fwd": lambda: xcorr.corr2d(x_np, k_np),
            "fwd+bwd": lambda: (xcorr.corr2d(x_np, k_np), xcorr.corr2d_vjp(x_np, k_np, g_np)),
        }
    if backend == "torch":
        import torch

        x = torch.from_numpy(x_np).requires_grad_(True)
        k = torch.from_numpy(k_np).requires_grad_(True)
        g = torch.from_numpy(g_np)

        def fwd():
            with torch.no_grad():
                return xcorr.corr2d(x, k)

        def both():
            xcorr.corr2d(x, k).backward(g)
            gx, gk = x.grad, k.grad
            x.grad = k.grad = None  # the caller holds the only references (the memory table counts them)
            return gx, gk

        return {"fwd": fwd, "fwd+bwd": both}
    import jax

    x, k, g = jax.device_put(x_np), jax.device_put(k_np), jax.device_put(g_np)
    forward = jax.jit(xcorr.corr2d)
    value_and_grads = jax.jit(jax.value_and_grad(lambda x, k, g: (xcorr.corr2d(x, k) * g).sum(), argnums=(0, 1)))
    return {
        "fwd": lambda: forward(x, k).block_until_ready(),
        "fwd+bwd": lambda: jax.block_until_ready(value_and_grads(x, k, g)),
    }


def check(backend: str, calls, x_np, k_np, g_np) -> None:
    """The timed calls compute what they should: the copy, the forward and both gradients (against numpy's)."""
    import math

    y = np.asarray(xcorr.corr2d(x_np.astype(np.float64), k_np.astype(np.float64)))
    atol = 1e-4 * math.sqrt(k_np.size)
    np.testing.assert_allclose(np.asarray(calls["fwd"]()), y, rtol=1e-4, atol=atol)
    gx, gk = xcorr.corr2d_vjp(x_np.astype(np.float64), k_np.astype(np.float64), g_np.astype(np.float64))
    both = calls["fwd+bwd"]()
    if backend == "numpy":
        got = both[1]
    elif backend == "torch":
        got = tuple(t.numpy() for t in both)
    else:
        got = both[1]
    np.testing.assert_allclose(np.asarray(got[0]), gx, rtol=1e-4, atol=atol)
    np.testing.assert_allclose(np.asarray(got[1]), gk, rtol=1e-3, atol=1e-3 * math.sqrt(g_np.size))


def limit_table(report, backends, sizes, repeats: int, *, data, Case, ms, samples_note, threads: int) -> None:
    table = report.table(
        "limit",
        f"Near the limit: copy, forward and forward+backward (ms, median of {repeats}; float32, valid mode)",
        ["backend", "case", "copy", "fresh copy", "fwd", "fwd+bwd", "fwd / copy", "fwd / fresh copy", "fwd+bwd / fwd"],
        "llrrrrrrr",
    )
    for backend in backends:
        for n in sizes:
            for h, w in LIMIT_KERNELS:
                case = Case(f"{n}² {h}x{w}", (n, n), (h, w))
                x_np, k_np = data(case)
                g_np = np.random.default_rng(1).standard_normal((n - h + 1, n - w + 1), dtype=np.float32)
                calls = candidates(backend, x_np, k_np, g_np, threads)
                check(backend, calls, x_np, k_np, g_np)
                times = _measure(calls, repeats)
                copy, fresh, fwd, both = times["copy"], times["fresh copy"], times["fwd"], times["fwd+bwd"]
                table.row(
                    [backend, case.label + samples_note(times, repeats), ms(copy), ms(fresh), ms(fwd), ms(both),
                     f"{fwd / copy:.2f}", f"{fwd / fresh:.2f}", f"{both / fwd:.2f}"],
                    {"backend": backend, "case": case.label, "copy_s": copy, "fresh_copy_s": fresh, "fwd_s": fwd,
                     "fwd_bwd_s": both, "fwd_over_copy": fwd / copy, "fwd_over_fresh_copy": fwd / fresh,
                     "fwd_bwd_over_fwd": both / fwd, "method": case.chosen(backend),
                     "samples": {name: times.count(name) for name in calls}},
                )
    report.note(
        "copy: np.multiply(x, 1.0, out=y) into a preallocated y, in row bands on every core (numpy's, the one "
        "yardstick of every backend's rows: one read of the image, one write of the output); fresh copy: the "
        "same into a new array each call, the floor of a call that returns a new output (its pages are "
        "faulted in and zeroed as they are first written). fwd+bwd: the output and both gradients in one timed call (numpy corr2d and "
        "corr2d_vjp; torch forward and backward(g); jax value_and_grad of sum(corr2d(x, k) * g), jitted)."
    )


def sweep_table(report, backends, sizes, kernels, repeats: int, *, data, Case, ms) -> None:
    table = report.table(
        "sweep",
        f"Sweep: forward time per output element (median of {repeats}; float32, valid mode, method='auto')",
        ["backend", "size", "kernel", "method", "ms", "ns / output"],
        "lrllrr",
    )
    for backend in backends:
        fwd = _forward(backend)
        for n in sizes:
            for h, w in kernels:
                if h > n or w > n:
                    continue
                case = Case(f"{n}² {h}x{w}", (n, n), (h, w))
                x_np, k_np = data(case)
                x, k = _to(backend, x_np), _to(backend, k_np)
                t = _measure({"fwd": lambda x=x, k=k, fwd=fwd: fwd(x, k)}, repeats)["fwd"]
                outputs = (n - h + 1) * (n - w + 1)
                method = case.chosen(backend)
                table.row(
                    [backend, f"{n}²", f"{h}x{w}", method, ms(t), f"{t / outputs * 1e9:.3g}"],
                    {"backend": backend, "size": n, "kernel": [h, w], "method": method, "fwd_s": t,
                     "s_per_output": t / outputs},
                )


def _to(backend: str, a):
    if backend == "torch":
        import torch

        return torch.from_numpy(a)
    if backend == "jax":
        import jax

        return jax.device_put(a)
    return a


def _forward(backend: str):
    if backend == "torch":
        import torch

        def fwd(x, k):
            with torch.no_grad():
                return xcorr.corr2d(x, k)

        return fwd
    if backend == "jax":
        import jax

        jitted = jax.jit(xcorr.corr2d)
        return lambda x, k: jitted(x, k).block_until_ready()
    return xcorr.corr2d


def _measure(calls, repeats: int):
    from ._timing import measure

    return measure(calls, repeats)
