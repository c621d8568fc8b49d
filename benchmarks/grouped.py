"""``python -m benchmarks.grouped``: grouped and depthwise layers on jax against ``lax``, in 1, 2 and 3-D.

Each row is one layer, float32, jitted: ``xcorr.corr2d_multi(x, w, groups=G, padding="same")``
(``corr1d_multi``, ``corr3d_multi`` in 1-D and 3-D)
(``method="auto"``) and the same convolution written with ``lax.conv_general_dilated``
(``feature_group_count=G``), forward and forward+backward (the value and both gradients of
``sum(y ** 2)`` in one timed call), timed interleaved in one process. The ratio is xcorr's time
over lax's: below 1 is faster. Where ``JaxTuning.grouped_direct_channels`` sends a layer to the
direct method (up to that many input channels per group, on the CPU), the table says so.

A second table does the same for transposed layers, ``xcorr.conv_transpose2d(x, w, stride=2,
groups=G)`` (``conv_transpose1d``, ``conv_transpose3d``) against ``lax.conv_general_dilated`` with
``lhs_dilation`` and the flipped, regrouped kernel (``lax.conv_transpose``'s form, with groups);
``JaxTuning.grouped_transpose_direct_channels`` decides the route there.

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

# Transposed layers, stride 2: (spatial axes, batch, channels in, channels out, side, kernel side, groups)
TRANSPOSED = [
    (2, 8, 64, 64, 28, 3, 64),  # depthwise upsampling
    (2, 8, 64, 128, 28, 3, 64),  # depthwise, channel multiplier 2
    (2, 8, 64, 64, 28, 4, 32),  # 2 channels per group
    (2, 8, 64, 64, 28, 3, 16),  # 4 channels per group: lax
    (2, 8, 64, 64, 28, 3, 1),  # dense: lax
    (1, 8, 64, 64, 4096, 9, 64),  # depthwise 1-D
    (3, 2, 32, 32, 12, 3, 32),  # depthwise 3-D
]


def _lax_transpose(lax, jnp, x, w, groups, stride):
    """``conv_transpose`` of ``x`` (N, C_in, *spatial) and ``w`` (C_in, C_out // groups, *taps) in
    ``groups`` groups, unpadded: lax's lhs-dilated convolution with the flipped kernel, regrouped
    to (C_out, C_in // groups, *taps)."""
    c_in, per_out, *taps = w.shape
    axes = len(taps)
    rhs = jnp.flip(w, axis=tuple(range(2, 2 + axes))).reshape(groups, c_in // groups, per_out, *taps)
    rhs = jnp.swapaxes(rhs, 1, 2).reshape(groups * per_out, c_in // groups, *taps)
    pads = [(t - 1, t - 1) for t in taps]
    return lax.conv_general_dilated(x, rhs, (1,) * axes, pads, lhs_dilation=(stride,) * axes, feature_group_count=groups)


def _time_pair(jax, ours, theirs, x, w, repeats):
    """Interleaved medians of ``ours`` and ``theirs`` (checked equal first), jitted: forward, and
    the value and both gradients of ``sum(y ** 2)``."""
    np.testing.assert_allclose(ours(x, w), theirs(x, w), rtol=1e-3, atol=1e-3)
    candidates = {}
    for name, f in (("ours", ours), ("lax", theirs)):
        forward = jax.jit(f)
        both = jax.jit(jax.value_and_grad(lambda x, w, f=f: (f(x, w) ** 2).sum(), argnums=(0, 1)))
        candidates[f"{name} forward"] = lambda forward=forward, x=x, w=w: jax.block_until_ready(forward(x, w))
        candidates[f"{name} both"] = lambda both=both, x=x, w=w: jax.block_until_ready(both(x, w))
    return measure(candidates, repeats)


def _row(t, layer, route):
    fwd, bwd = (t[f"ours {s}"] / t[f"lax {s}"] for s in ("forward", "both"))
    print(
        f"| {layer} | {route} "
        f"| {1e3 * t['ours forward']:.1f} / {1e3 * t['lax forward']:.1f} ms | {fwd:.2g} "
        f"| {1e3 * t['ours both']:.1f} / {1e3 * t['lax both']:.1f} ms | {bwd:.2g} |"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grouped", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved samples per candidate")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    from jax import lax

    import xcorr
    from xcorr.toolkit import adapter_for

    adapter = adapter_for(jnp)
    threshold = adapter.tuning.grouped_direct_channels
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

        t = _time_pair(jax, ours, theirs, x, w, args.repeats)
        route = "native" if adapter.auto_native(w, groups) else "direct"
        _row(t, (axes, n, c_in, c_out, side, k, groups), route)

    print(f"\ngrouped_transpose_direct_channels = {adapter.tuning.grouped_transpose_direct_channels}; stride 2\n")
    print("| transposed (axes, N, C_in, C_out, side, k, groups) | route | forward xcorr / lax | ratio | fwd+bwd xcorr / lax | ratio |")
    print("|---|---|---|---|---|---|")
    for axes, n, c_in, c_out, side, k, groups in TRANSPOSED:
        x = jnp.asarray(rng.standard_normal((n, c_in, *(side,) * axes)), jnp.float32)
        w = jnp.asarray(rng.standard_normal((c_in, c_out // groups, *(k,) * axes)), jnp.float32)
        function = {1: xcorr.conv_transpose1d, 2: xcorr.conv_transpose2d, 3: xcorr.conv_transpose3d}[axes]

        def ours(x, w, groups=groups, function=function):
            return function(x, w, stride=2, groups=groups)

        def theirs(x, w, groups=groups):
            return _lax_transpose(lax, jnp, x, w, groups, 2)

        t = _time_pair(jax, ours, theirs, x, w, args.repeats)
        route = "lax" if adapter.transpose_native(w, groups) else "generic"
        _row(t, (axes, n, c_in, c_out, side, k, groups), route)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
