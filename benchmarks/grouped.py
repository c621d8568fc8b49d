"""``python -m benchmarks.grouped``: grouped and depthwise layers on jax against ``lax``, in 1, 2 and 3-D.

Each row is one layer, float32, jitted: ``xcorr.corr2d_multi(x, w, groups=G, padding="same")``
(``corr1d_multi``, ``corr3d_multi`` in 1-D and 3-D)
(``method="auto"``) and the same convolution written with ``lax.conv_general_dilated``
(``feature_group_count=G``), forward and forward+backward (the value and both gradients of
``sum(y ** 2)`` in one timed call), timed interleaved in one process. The ratio is xcorr's time
over lax's: below 1 is faster. Where ``JaxTuning.grouped_direct_channels`` sends a layer to the
direct method (up to that many input channels per group, on the CPU), the table says so.

    python -m benchmarks.grouped              # a minute or two on 2 cores
    python -m benchmarks.grouped --repeats 9
"""

from __future__ import annotations

import argparse
import platform

import numpy as np

from ._timing import measure

# (spatial axes, batch, channels in, channels out, side, kernel side, groups)
LAYERS = [
    (2, 8, 64, 64, 56, 3, 64),  # depthwise (MobileNet-like)
    (2, 8, 64, 128, 28, 3, 64),  # depthwise, channel multiplier 2
    (2, 4, 32, 32, 64, 5, 32),  # depthwise 5x5
    (2, 8, 64, 64, 56, 3, 16),  # 4 channels per group
    (2, 8, 64, 64, 56, 3, 4),  # 16 channels per group
    (2, 8, 64, 64, 32, 3, 2),  # 32 channels per group: the native convolution
    (2, 8, 64, 64, 32, 3, 1),  # dense: the native convolution
    (1, 8, 64, 64, 4096, 9, 64),  # depthwise 1-D (a separable audio layer)
    (3, 2, 32, 32, 24, 3, 32),  # depthwise 3-D (a separable video/volume layer)
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grouped", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved samples per candidate")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    from jax import lax

    import xcorr
    from xcorr.toolkit import adapter_for

    threshold = adapter_for(jnp).tuning.grouped_direct_channels
    print(f"jax {jax.__version__} on {jax.default_backend()}, {platform.processor() or platform.machine()}")
    print(f"grouped_direct_channels = {threshold}; float32, jitted; times are medians of {args.repeats}\n")
    print("| layer (axes, N, C_in, C_out, side, k, groups) | route | forward xcorr / lax | ratio | fwd+bwd xcorr / lax | ratio |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for axes, n, c_in, c_out, side, k, groups in LAYERS:
        x = jnp.asarray(rng.standard_normal((n, c_in, *(side,) * axes)), jnp.float32)
        w = jnp.asarray(rng.standard_normal((c_out, c_in // groups, *(k,) * axes)), jnp.float32)
        function = {1: xcorr.corr1d_multi, 2: xcorr.corr2d_multi, 3: xcorr.corr3d_multi}[axes]

        def ours(x, w, groups=groups, function=function):
            return function(x, w, groups=groups, padding="same")

        def theirs(x, w, groups=groups, axes=axes):
            return lax.conv_general_dilated(x, w, (1,) * axes, "SAME", feature_group_count=groups)

        candidates = {}
        for name, f in (("ours", ours), ("lax", theirs)):
            forward = jax.jit(f)
            both = jax.jit(jax.value_and_grad(lambda x, w, f=f: (f(x, w) ** 2).sum(), argnums=(0, 1)))
            candidates[f"{name} forward"] = lambda forward=forward, x=x, w=w: jax.block_until_ready(forward(x, w))
            candidates[f"{name} both"] = lambda both=both, x=x, w=w: jax.block_until_ready(both(x, w))
        np.testing.assert_allclose(ours(x, w), theirs(x, w), rtol=1e-3, atol=1e-3)
        t = measure(candidates, args.repeats)
        route = "native" if adapter_for(jnp).auto_native(w, groups) else "direct"
        fwd, bwd = (t[f"ours {s}"] / t[f"lax {s}"] for s in ("forward", "both"))
        print(
            f"| ({axes}, {n}, {c_in}, {c_out}, {side}, {k}, {groups}) | {route} "
            f"| {1e3 * t['ours forward']:.1f} / {1e3 * t['lax forward']:.1f} ms | {fwd:.2g} "
            f"| {1e3 * t['ours both']:.1f} / {1e3 * t['lax both']:.1f} ms | {bwd:.2g} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
