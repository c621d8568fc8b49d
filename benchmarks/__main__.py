"""``python -m benchmarks``: xcorr against each backend's own convolution.

One process, interleaved repeats, medians; float32, valid-mode correlation.
For each backend it prints a Markdown table: xcorr's time (``method="auto"``,
with the method it chose), the fastest native alternative on that backend,
their ratio, and the peak extra resident memory of both. Then forward+backward
rows, the seed's double loop and the bandwidth floor.

    python -m benchmarks                      # everything (about 10-15 minutes)
    python -m benchmarks --backends numpy --sizes 256,1024 --repeats 3
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata as md
import math
import sys
import time

import numpy as np

import xcorr
from xcorr import _methods
from xcorr._options import Options, plan

from ._timing import load, machine, measure, peak_extra_bytes

KERNELS = ((1, 2), (3, 3), (7, 7), (31, 31))
# Direct native methods (no FFT) are not run where outputs x taps exceed this:
# 4096^2 with 31x31 would take 10-60 s per call and is never the fastest.
DIRECT_WORK_LIMIT = 2e9
LAYER = (8, 64, 64, 56, 3)  # N, C_in, C_out, H=W, kernel


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
        method = _methods.choose_method(backend, "real floating", self.x_shape, self.k_shape, geometry)
        if backend == "numpy" and method == "direct" and numba_direct(geometry):
            return "direct (numba)"
        return method


def numba_direct(geometry) -> bool:
    """Whether numpy's direct path runs the numba kernel (backends/_numba.py) for this float32 case."""
    from xcorr.backends import _numba

    return _numba.ENABLED and math.prod(geometry.out_shape) >= _methods.NUMBA_MIN_OUTPUTS and _numba._kernels() is not None


def single_cases(sizes) -> list[Case]:
    cases = [Case(f"{n}² {h}x{w}", (n, n), (h, w)) for n in sizes for h, w in KERNELS]
    cases += [Case(f"16x256² {h}x{w}", (16, 256, 256), (h, w)) for h, w in KERNELS]
    return cases


def backward_cases(sizes) -> list[Case]:
    cases = [Case(f"{n}² {h}x{w}", (n, n), (h, w)) for n in sizes if n >= 1024 for h, w in ((3, 3), (31, 31))]
    return [*cases, Case("16x256² 3x3", (16, 256, 256), (3, 3))]


def data(case: Case, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    k = rng.standard_normal(case.k_shape, dtype=np.float32)
    return x, k


def ms(seconds) -> str:
    if seconds is None:
        return "—"
    value = seconds * 1e3
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def mb(nbytes) -> str:
    if nbytes is None:
        return "—"
    value = nbytes / 2**20
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


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


def forward_table(backend: str, cases, repeats: int, out) -> list[tuple[str, float, float | None]]:
    to, done = converters(backend)
    if backend == "jax":
        import jax

        # The natives are jitted functions; so is xcorr here (its kernels are
        # jitted inside, but an eager call adds about 0.5 ms of dispatch).
        jitted_corr2d = jax.jit(xcorr.corr2d)
    natives_of = NATIVES[backend]
    print(f"\n### {backend}: forward (ms, median of {repeats})\n", file=out)
    print("| case | xcorr (auto) | method | fastest native | native | ratio | xcorr peak MB | native peak MB |", file=out)
    print("|---|---:|---|---|---:|---:|---:|---:|", file=out)
    rows = []
    for case in cases:
        x_np, k_np = data(case)
        x, k = to(x_np), to(k_np)
        natives = natives_of(case)
        skipped = [name for name, f in natives.items() if f is None]
        runnable = {name: f for name, f in natives.items() if f is not None}
        ours = jitted_corr2d if backend == "jax" else xcorr.corr2d
        candidates = {"xcorr": lambda: done(ours(x, k))}
        for name, f in runnable.items():
            candidates[name] = lambda f=f: done(f(x, k))
        reference = np.asarray(candidates["xcorr"]())
        for name in runnable:  # every alternative computes the same thing
            np.testing.assert_allclose(np.asarray(candidates[name]()), reference, rtol=2e-3, atol=2e-3 * math.sqrt(case.work / reference.size))
        times = measure(candidates, repeats)
        best = min(runnable, key=times.get)
        ratio = times["xcorr"] / times[best]
        peak = peak_extra_bytes(candidates["xcorr"])
        native_peak = peak_extra_bytes(candidates[best])
        note = f" ({', '.join(skipped)} not run: > 10 s)" if skipped else ""
        print(
            f"| {case.label} | {ms(times['xcorr'])} | {case.chosen(backend)} | {best}{note} | {ms(times[best])} "
            f"| {ratio:.2f} | {mb(peak)} | {mb(native_peak)} |",
            file=out,
            flush=True,
        )
        rows.append((case.label, times["xcorr"], ratio))
    return rows


def backward_table(backend: str, cases, repeats: int, out):
    print(f"\n### {backend}: forward + backward (ms, median of {repeats})\n", file=out)
    print("| case | xcorr fwd | xcorr fwd+bwd | fwd+bwd / fwd | native | native fwd+bwd | ratio to native |", file=out)
    print("|---|---:|---:|---:|---|---:|---:|", file=out)
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
        ratio = "—" if nat is None else f"{times['both'] / nat:.2f}"
        print(
            f"| {case.label} | {ms(times['fwd'])} | {ms(times['both'])} | {times['both'] / times['fwd']:.2f} "
            f"| {native_name or '—'} | {ms(nat)} | {ratio} |",
            file=out,
            flush=True,
        )


def _backward_candidates(backend, case, x_np, k_np, g_np):
    if backend == "numpy":
        fwd = lambda: xcorr.corr2d(x_np, k_np)  # noqa: E731
        both = lambda: (xcorr.corr2d(x_np, k_np), xcorr.corr2d_vjp(x_np, k_np, g_np))  # noqa: E731
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

        def both():
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

    def loss(f):
        # g is an argument, not a closed-over constant that XLA would fold.
        grad = jax.jit(jax.grad(lambda x, k, g: (f(x, k) * g).sum(), argnums=(0, 1)))
        return lambda x, k: grad(x, k, g)

    def conv(x, k):
        y = lax.conv_general_dilated(x.reshape(-1, 1, *x.shape[-2:]), k.reshape(1, 1, *k.shape), (1, 1), "VALID")
        return y.reshape(g.shape)

    xgrad, ngrad = loss(xcorr.corr2d), loss(conv)
    forward = jax.jit(xcorr.corr2d)
    return (
        lambda: forward(x, k).block_until_ready(),
        lambda: jax.block_until_ready(xgrad(x, k)),
        "lax.conv",
        None if case.work > DIRECT_WORK_LIMIT else (lambda: jax.block_until_ready(ngrad(x, k))),
    )


def layer_table(backend: str, repeats: int, out):
    """Multi-channel layer: corr2d_multi against the framework's GEMM convolution."""
    n, cin, cout, size, ks = LAYER
    label = f"N={n}, {cin}->{cout}, {size}², {ks}x{ks}"
    if not hasattr(xcorr, "corr2d_multi"):
        print(f"\n(layer {label}: xcorr.corr2d_multi not available)", file=out)
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

        def grad(f):
            grad = jax.jit(jax.grad(lambda x, w, g: (f(x, w) * g).sum(), argnums=(0, 1)))
            return lambda x, w: grad(x, w, g)

        fx, fn, gx, gn = jax.jit(xcorr.corr2d_multi), jax.jit(conv), grad(xcorr.corr2d_multi), grad(conv)
        candidates = {
            "xcorr fwd": lambda: fx(x, w).block_until_ready(),
            "native fwd": lambda: fn(x, w).block_until_ready(),
            "xcorr fwd+bwd": lambda: jax.block_until_ready(gx(x, w)),
            "native fwd+bwd": lambda: jax.block_until_ready(gn(x, w)),
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
    print(f"\n### {backend}: multi-channel layer {label} (ms, median of {repeats})\n", file=out)
    print("| pass | xcorr | native | ratio |", file=out)
    print("|---|---:|---:|---:|", file=out)
    for which in ("fwd", "fwd+bwd"):
        ours, theirs = times.get(f"xcorr {which}"), times.get(f"native {which}")
        if ours is None:
            continue
        ratio = "—" if theirs is None else f"{ours / theirs:.2f}"
        print(f"| {which} | {ms(ours)} | {(native + ' ') if theirs else ''}{ms(theirs)} | {ratio} |", file=out)
    print(f"\nmemory, xcorr forward: {mb(peak_extra_bytes(candidates['xcorr fwd']))} MB peak extra", file=out, flush=True)


def seed_and_floor(repeats: int, out, best_4096_3x3: dict[str, float]):
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
    print("\n### The seed's double loop (torch, 256² 3x3, one run)\n", file=out)
    print("| seed loop | xcorr (torch, 20 calls in a row) | speed-up |", file=out)
    print("|---:|---:|---:|", file=out)
    print(f"| {ms(seed)} | {ms(fast)} | {seed / fast:,.0f}x |", file=out)

    floor_table(repeats, out, best_4096_3x3)


def floor_table(repeats: int, out, best_4096_3x3: dict[str, float]):
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
    floor = min(copies.values())
    gbs = 2 * a.size * 4 / floor / 1e9
    print("\n### Bandwidth floor, 4096² 3x3 float32\n", file=out)
    print(f"Copy of the input to a preallocated output: {ms(floor)} ms ({gbs:.0f} GB/s read+write).\n", file=out)
    print("| backend | xcorr 4096² 3x3 | / floor |", file=out)
    print("|---|---:|---:|", file=out)
    for backend, t in best_4096_3x3.items():
        print(f"| {backend} | {ms(t)} | {t / floor:.1f} |", file=out)


def versions() -> str:
    names = ["numpy", "scipy", "numba", "torch", "jax", "jaxlib", "dask", "array-api-compat"]
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="numpy,torch,jax", help="comma-separated: numpy, torch, jax")
    parser.add_argument("--sizes", default="256,1024,4096", help="image sizes (square)")
    parser.add_argument("--repeats", type=int, default=5, help="timed samples per candidate")
    parser.add_argument("--no-backward", action="store_true", help="skip the forward+backward tables")
    parser.add_argument(
        "--only-backward", action="store_true", help="only the forward+backward tables (single-plane cases)"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    out = sys.stdout
    print(f"## xcorr benchmarks, {datetime.date.today().isoformat()}\n", file=out)
    print(f"Machine: {machine()}; {load()} at the start.  ", file=out)
    print(f"Versions: Python {sys.version.split()[0]}, {versions()}.  ", file=out)
    print("float32, single-channel valid-mode correlation unless stated; ratio = xcorr / fastest native.", file=out)
    best_4096: dict[str, float] = {}
    if "numpy" in args.backends:  # load numba's cached kernels outside the timed warm-ups
        xcorr.corr2d(*data(Case("", (256, 256), (3, 3))))
    for backend in args.backends.split(","):
        if args.only_backward:
            backward_table(backend, backward_cases(sizes), args.repeats, out)
            continue
        rows = forward_table(backend, single_cases(sizes), args.repeats, out)
        ratios = [r for _, _, r in rows]
        print(
            f"\n{backend}: median ratio {np.median(ratios):.2f}, worst {max(ratios):.2f} "
            f"({rows[int(np.argmax(ratios))][0]})",
            file=out,
        )
        for label, t, _ in rows:
            if label == "4096² 3x3":
                best_4096[backend] = t
        layer_table(backend, args.repeats, out)
        if not args.no_backward and hasattr(xcorr, "corr2d_vjp"):
            backward_table(backend, backward_cases(sizes), args.repeats, out)
    if args.only_backward:
        pass
    elif "torch" in args.backends:
        seed_and_floor(args.repeats, out, best_4096)
    elif best_4096:
        floor_table(args.repeats, out, best_4096)
    print(f"\n{load()} at the end.", file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
