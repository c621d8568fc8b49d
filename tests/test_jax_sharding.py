"""JAX data parallelism: xcorr under ``jax.jit`` with operands sharded over 4 host devices.

``XLA_FLAGS=--xla_force_host_platform_device_count=4`` must be set before jax
is imported, so the checks run in a fresh interpreter: this file run as a
script (``python tests/test_jax_sharding.py``) prints one JSON object, and the
tests below assert on it. For each case the compiled HLO is searched for
collectives: with the batch axis sharded, no path may gather the images (or
anything else) onto every device, the outputs keep the input's sharding, a
kernel gradient is per-shard partial sums and one all-reduce, and every
result equals the single-device one. With the rows sharded instead, nothing
is gathered either: neighbouring devices exchange their halo rows.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys

import pytest

from matrix import require_module

# One subprocess compiles every case: tens of seconds on a loaded 2-core machine.
pytestmark = pytest.mark.slow

DEVICES = 4
COLLECTIVES = (
    "all-gather",
    "all-reduce",
    "all-to-all",
    "collective-permute",
    "reduce-scatter",
)


def count_collectives(hlo: str) -> dict[str, int]:
    """How many of each collective op the compiled HLO text holds (async ``-start`` halves included)."""
    return {
        op: len(re.findall(rf"= [^=]*? {op}(?:-start)?\(", hlo)) for op in COLLECTIVES
    }


# --- the checks, run in the subprocess -------------------------------------------


def _cases():
    """``(name, function of (x, k), x, k, how x and k are sharded)``: forward and gradients."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import xcorr

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((8, 48, 40)), dtype=jnp.float32)
    k3 = jnp.asarray(rng.standard_normal((3, 3)), dtype=jnp.float32)
    k9 = jnp.asarray(rng.standard_normal((9, 9)), dtype=jnp.float32)
    kb = jnp.asarray(rng.standard_normal((8, 3, 3)), dtype=jnp.float32)
    xm = jnp.asarray(rng.standard_normal((8, 3, 24, 20)), dtype=jnp.float32)
    wm = jnp.asarray(rng.standard_normal((4, 3, 3, 3)), dtype=jnp.float32)
    cases = []
    for method, k, opts in (
        # "same" with a fill: numba's custom calls on one device (forward and kernel gradient).
        ("auto", k3, {"mode": "same"}),
        ("direct", k3, {"mode": "full", "boundary": "wrap", "stride": 2}),
        ("fft", k9, {"mode": "same", "boundary": "symm", "dilation": 2}),
        ("native", k3, {"mode": "valid", "stride": (2, 1)}),
    ):
        name = f"corr2d-{method}-{opts.get('boundary', 'fill')}"
        corr = functools.partial(xcorr.corr2d, method=method, **opts)
        cases.append((f"{name}-forward", corr, x, k, "batch"))
        cases.append(
            (
                f"{name}-grad",
                jax.grad(
                    lambda x, k, corr=corr: jnp.sum(corr(x, k) ** 2), argnums=(0, 1)
                ),
                x,
                k,
                "batch",
            )
        )
    # Rows sharded instead of the batch: XLA exchanges the halos between neighbours.
    rows = functools.partial(
        xcorr.corr2d, mode="same", boundary="symm", method="direct"
    )
    cases.append(("rows-corr2d-direct-symm-forward", rows, x, k3, "rows"))
    grad = jax.grad(lambda x, k: jnp.sum(rows(x, k) ** 2), argnums=(0, 1))
    cases.append(("rows-corr2d-direct-symm-grad", grad, x, k3, "rows"))
    conv = functools.partial(xcorr.conv2d, mode="same", boundary="wrap")
    cases.append(
        (
            "conv2d-per-plane-kernels-grad",
            jax.grad(lambda x, k: jnp.sum(conv(x, k) ** 2), argnums=(0, 1)),
            x,
            kb,
            "both",
        )
    )
    for method in ("auto", "direct"):
        multi = functools.partial(xcorr.corr2d_multi, mode="same", method=method)
        cases.append((f"corr2d_multi-{method}-forward", multi, xm, wm, "batch"))
        grad = jax.grad(
            lambda x, w, multi=multi: jnp.sum(multi(x, w) ** 2), argnums=(0, 1)
        )
        cases.append((f"corr2d_multi-{method}-grad", grad, xm, wm, "batch"))
    return cases


def _place(mesh, a, how):
    """``a`` split along its first axis (True, "batch"), its rows ("rows"), or replicated (False)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    if how == "rows":
        spec = PartitionSpec(*([None] * (a.ndim - 2)), "batch")
    else:
        spec = PartitionSpec("batch") if how else PartitionSpec()
    return jax.device_put(a, NamedSharding(mesh, spec))


def _max_error(a, b) -> float:
    import jax
    import numpy as np

    errors = jax.tree.map(
        lambda p, q: float(np.max(np.abs(np.asarray(p) - np.asarray(q)))), a, b
    )
    return max(jax.tree.leaves(errors))


def _scale(a) -> float:
    import jax
    import numpy as np

    return max(float(np.max(np.abs(np.asarray(p)))) for p in jax.tree.leaves(a))


def _specs(a) -> list[str]:
    """Each leaf's placement: "batch" (split along its first axis), "replicated", or the sharding itself."""
    import jax

    def spec(p):
        if p.sharding.is_fully_replicated:
            return "replicated"
        parts = tuple(getattr(p.sharding, "spec", ()))
        parts += (None,) * (p.ndim - len(parts))
        if parts and parts[0] == "batch" and all(q is None for q in parts[1:]):
            return "batch"
        if (
            len(parts) >= 2
            and parts[-2] == "batch"
            and all(q is None for q in parts[:-2] + parts[-1:])
        ):
            return "rows"
        return str(p.sharding)

    return [spec(p) for p in jax.tree.leaves(a)]


def _train_step():
    """One data-parallel ``Conv2D`` step: the batch sharded, the parameters replicated."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import xcorr

    layer = xcorr.Conv2D(
        (3, 3),
        in_channels=2,
        out_channels=3,
        mode="same",
        backend="jax",
        dtype="float32",
        seed=0,
    )
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((8, 2, 24, 20)), dtype=jnp.float32)
    y = jnp.asarray(rng.standard_normal((8, 3, 24, 20)), dtype=jnp.float32)

    @jax.jit
    def step(layer, x, y):
        loss, grads = jax.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(layer)
        return jax.tree.map(lambda p, g: p - 0.1 * g, layer, grads), loss

    return step, layer, x, y


def run_checks() -> dict:
    import jax
    import numpy as np
    from jax.sharding import Mesh

    jax.config.update("jax_enable_x64", True)
    devices = jax.devices()
    assert len(devices) == DEVICES, devices
    mesh = Mesh(np.array(devices), ("batch",))
    results = {"devices": len(devices), "cases": {}}
    for name, fn, x, k, how in _cases():
        jitted = jax.jit(fn)
        single = jitted(x, k)
        xs, ks = (
            _place(mesh, x, "rows" if how == "rows" else True),
            _place(mesh, k, how == "both"),
        )
        hlo = jitted.lower(xs, ks).compile().as_text()
        sharded = jitted(xs, ks)
        results["cases"][name] = {
            "collectives": count_collectives(hlo),
            "error": _max_error(sharded, single),
            "scale": _scale(single),
            "specs": _specs(sharded),
        }
    step, layer, x, y = _train_step()
    single, single_loss = step(layer, x, y)
    rep = jax.tree.map(lambda p: _place(mesh, p, False), layer)
    xs, ys = _place(mesh, x, True), _place(mesh, y, True)
    hlo = jax.jit(step).lower(rep, xs, ys).compile().as_text()
    sharded, sharded_loss = step(rep, xs, ys)
    results["train_step"] = {
        "collectives": count_collectives(hlo),
        "error": _max_error(sharded, single),
        "scale": _scale(single),
        "loss_error": abs(float(sharded_loss) - float(single_loss)),
        "specs": _specs(sharded),
    }
    results["shard_map"] = _shard_map_checks(mesh)
    return results


def _shard_map_checks(mesh) -> dict:
    """Gradients inside ``jax.shard_map`` with its default ``check_vma=True``: the images split
    over the devices, the kernel replicated. jax types a replicated value's gradient as replicated
    and sums it over the devices itself (the transpose of the cast the primitive's operands get),
    as for its own convolution; each method's result against the single-device gradient."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import PartitionSpec as P

    import xcorr

    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((8, 20, 18)))
    k = jnp.asarray(rng.standard_normal((3, 4)))
    checks = {}
    for method in ("direct", "fft"):

        def loss(k, x, method=method):
            return jnp.sum(jnp.sin(xcorr.corr2d(x, k, mode="same", method=method)))

        def grads(k, x, loss=loss):
            return jax.grad(loss, argnums=(0, 1))(k, x)

        per_device = jax.jit(jax.shard_map(grads, mesh=mesh, in_specs=(P(), P("batch")), out_specs=(P(), P("batch"))))
        (gk, gx), (want_k, want_x) = per_device(k, x), jax.jit(grads)(k, x)
        checks[method] = {"error": max(_max_error(gk, want_k), _max_error(gx, want_x)), "scale": _scale(want_k)}
    return checks


# --- the tests ----------------------------------------------------------------------


@functools.cache
def _results() -> dict:
    require_module("jax")
    env = dict(
        os.environ,
        XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES}",
        JAX_PLATFORMS="cpu",
    )
    done = subprocess.run(
        [sys.executable, __file__],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"the sharding checks failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results():
    return _results()


def test_sharded_paths_gather_nothing_and_keep_the_batch_sharding(results):
    assert results["devices"] == DEVICES
    cases = results["cases"]
    assert len(cases) >= 10
    for name, case in cases.items():
        assert case["collectives"]["all-gather"] == 0, (name, case)
        if name.startswith("rows-"):
            # Neighbours exchange their halo rows (collective-permute); the rows stay split.
            assert case["specs"][0] == "rows", (name, case)
            continue
        assert case["collectives"]["all-to-all"] == 0, (name, case)
        if name.endswith("forward"):
            # Each device computes its own images: no communication at all.
            assert sum(case["collectives"].values()) == 0, (name, case)
            assert case["specs"] == ["batch"], (name, case)
        else:
            # (gx, gk): the input gradient sharded like x, the kernel gradient replicated.
            assert case["specs"][0] == "batch", (name, case)


def test_kernel_gradient_is_partial_sums_and_one_all_reduce(results):
    for name, case in results["cases"].items():
        if not name.endswith("grad") or name.startswith("rows-"):
            continue
        if name.startswith("conv2d-per-plane"):
            # One kernel per image, sharded with it: nothing to sum across devices. The one
            # all-reduce is the input gradient's finiteness predicate over the sharded kernels (one
            # boolean: an inf or NaN tap takes the IEEE taps' scatter, decided by lax.cond).
            assert case["collectives"]["all-reduce"] <= 1, (name, case)
            assert sum(case["collectives"].values()) == case["collectives"]["all-reduce"], (name, case)
        else:
            assert case["collectives"]["all-reduce"] == 1, (name, case)
            assert case["specs"][1] == "replicated", (name, case)


def test_sharded_results_equal_single_device_results(results):
    for name, case in results["cases"].items():
        assert case["error"] <= 1e-4 * max(1.0, case["scale"]), (name, case)


def test_gradients_inside_shard_map_with_check_vma(results):
    checks = results["shard_map"]
    assert set(checks) == {"direct", "fft"}
    for method, check in checks.items():
        assert check["error"] <= 1e-10 * max(1.0, check["scale"]), (method, check)


def test_data_parallel_conv2d_step_matches_single_device_step(results):
    step = results["train_step"]
    assert step["collectives"]["all-gather"] == 0, step
    assert step["collectives"]["all-reduce"] >= 1, step
    assert step["specs"] == ["replicated", "replicated"], step
    assert step["error"] <= 1e-5 * max(1.0, step["scale"]), step
    assert step["loss_error"] <= 1e-5, step


if __name__ == "__main__":
    print(json.dumps(run_checks()))
