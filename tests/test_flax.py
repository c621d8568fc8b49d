"""The jax ``Conv2D`` under ``flax.serialization`` (state dicts and msgpack bytes), and as a plain pytree.

``xcorr.backends.jax`` registers the layer through ``flax.serialization``'s
``register_serialization_state`` when it loads, where flax is installed; that
the user's import of flax may come before or after the adapter is checked in
fresh interpreters.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import xcorr

from matrix import require_module

jax = require_module("jax")
serialization = require_module("flax.serialization")


def _layer(seed=0, **kwargs):
    return xcorr.Conv2D(3, in_channels=2, out_channels=4, backend="jax", dtype="float64", seed=seed, **kwargs)


def _same(a, b):
    assert type(a) is type(b) and a.spec == b.spec
    np.testing.assert_array_equal(np.asarray(a.weight), np.asarray(b.weight))
    if a.bias is None:
        assert b.bias is None
    else:
        np.testing.assert_array_equal(np.asarray(a.bias), np.asarray(b.bias))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"bias": False}, {"mode": "same", "boundary": "wrap", "groups": 2}],
    ids=["bias", "no-bias", "groups"],
)
def test_state_dict_round_trip(kwargs):
    layer = _layer(**kwargs)
    state = serialization.to_state_dict(layer)
    assert set(state) == {"weight", "bias"}
    assert state["weight"].shape == (4, 2 // layer.groups, 3, 3)
    restored = serialization.from_state_dict(_layer(seed=1, **kwargs), state)
    _same(layer, restored)


def test_msgpack_bytes_of_a_trained_layer_inside_a_pytree():
    x = jax.numpy.asarray(np.random.default_rng(0).standard_normal((2, 2, 8, 8)))
    target = _layer(seed=7)
    layer, losses = xcorr.fit(_layer(), x, target(x), lr=1e-3, steps=5)
    assert losses[-1] < losses[0]
    data = serialization.to_bytes({"conv": layer, "step": 5})
    restored = serialization.from_bytes({"conv": _layer(seed=3), "step": 0}, data)
    assert restored["step"] == 5
    _same(layer, restored["conv"])
    np.testing.assert_array_equal(np.asarray(restored["conv"](x)), np.asarray(layer(x)))


def test_restoring_a_mismatched_state_names_what_differs():
    layer = _layer()
    state = serialization.to_state_dict(layer)
    with pytest.raises(
        ValueError, match=r"state\['weight'\] must have the layer's shape \(8, 2, 3, 3\); got \(4, 2, 3, 3\)"
    ):
        serialization.from_state_dict(xcorr.Conv2D(3, in_channels=2, out_channels=8, backend="jax"), state)
    with pytest.raises(ValueError, match=r"keys 'bias' and 'weight'; got \['weight'\]"):
        serialization.from_state_dict(layer, {"weight": state["weight"]})
    with pytest.raises(ValueError, match="the layer's bias is None; the state's is"):
        serialization.from_state_dict(_layer(bias=False), state)


def test_pytree_leaves_round_trip_through_a_file():
    # equinox-style serialisation (eqx.tree_serialise_leaves): the leaves in
    # flattening order, put back into the structure of a like layer.
    layer = _layer()
    leaves, treedef = jax.tree.flatten(layer)
    buffer = io.BytesIO()
    np.savez(buffer, *[np.asarray(leaf) for leaf in leaves])
    buffer.seek(0)
    with np.load(buffer) as stored:
        loaded = [jax.numpy.asarray(stored[f"arr_{i}"]) for i in range(len(leaves))]
    like = jax.tree.structure(_layer(seed=2))
    assert like == treedef
    _same(layer, jax.tree.unflatten(like, loaded))


@pytest.mark.parametrize("flax_first", [False, True], ids=["adapter-then-flax", "flax-then-adapter"])
def test_registration_does_not_depend_on_import_order(flax_first):
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import xcorr
        if {flax_first}:
            import flax.serialization
        layer = xcorr.Conv2D(2, in_channels=1, out_channels=2, backend="jax")  # loads the jax adapter
        assert "flax" in sys.modules, "the jax adapter did not register the layer with the installed flax"
        from flax import serialization
        state = serialization.to_state_dict(layer)
        assert sorted(state) == ["bias", "weight"], state
        print("ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
