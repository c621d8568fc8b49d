"""``xcorr.Conv1D``, ``Conv3D``, ``Conv2D`` and their transposed layers as jax pytrees, registered with
flax's serialization."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ... import toolkit


class Conv2D(toolkit.Conv2D):
    """``xcorr.Conv2D`` as a jax pytree (equinox-style).

    ``weight`` and ``bias`` are the leaves; the hyper-parameters (``spec``)
    are static, so ``jax.jit``, ``jax.grad`` and ``jax.vmap`` take the layer
    itself, and ``jax.grad(loss)(layer, ...)`` returns a ``Conv2D`` of
    gradients. The layer is immutable: ``layer.replace(weight=...)`` makes a
    new one. Same arguments as ``xcorr.Conv2D`` (``backend`` may be omitted
    or "jax").
    """

    def __init__(self, kernel_size, /, **kwargs):
        spec, params = self._configure("jax", kernel_size, kwargs)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "weight", params["weight"])
        object.__setattr__(self, "bias", params["bias"])

    def __setattr__(self, name, value):
        msg = f"{self._public_name} is immutable (a jax pytree); use layer.replace({name}=...)"
        raise AttributeError(msg)

    def __call__(self, x):
        return self.spec.apply(self.weight, self.bias, x)

    def replace(self, **params):
        """A new layer with the given ``weight`` and/or ``bias``."""
        unknown = set(params) - {"weight", "bias"}
        if unknown:
            msg = f"replace takes weight and bias; got {sorted(unknown)}"
            raise TypeError(msg)
        return _make_layer(type(self), self.spec, params.get("weight", self.weight), params.get("bias", self.bias))

    def __repr__(self) -> str:
        return f"{self._public_name}({self.spec.describe()})"


class Conv2DTranspose(toolkit.Conv2DTranspose, Conv2D):
    """``xcorr.Conv2DTranspose`` as a jax pytree, like ``Conv2D`` (``weight`` and ``bias`` are the leaves)."""


class Conv1D(toolkit.Conv1D):
    """``xcorr.Conv1D`` as a jax pytree, like ``Conv2D`` (``weight`` and ``bias`` are the leaves)."""

    __init__ = Conv2D.__init__
    __setattr__ = Conv2D.__setattr__
    __call__ = Conv2D.__call__
    replace = Conv2D.replace
    __repr__ = Conv2D.__repr__


class Conv3D(toolkit.Conv3D):
    """``xcorr.Conv3D`` as a jax pytree, like ``Conv2D`` (``weight`` and ``bias`` are the leaves)."""

    __init__ = Conv2D.__init__
    __setattr__ = Conv2D.__setattr__
    __call__ = Conv2D.__call__
    replace = Conv2D.replace
    __repr__ = Conv2D.__repr__


class Conv1DTranspose(toolkit.Conv1DTranspose):
    """``xcorr.Conv1DTranspose`` as a jax pytree, like ``Conv2D`` (``weight`` and ``bias`` are the leaves)."""

    __init__ = Conv2D.__init__
    __setattr__ = Conv2D.__setattr__
    __call__ = Conv2D.__call__
    replace = Conv2D.replace
    __repr__ = Conv2D.__repr__


class Conv3DTranspose(toolkit.Conv3DTranspose):
    """``xcorr.Conv3DTranspose`` as a jax pytree, like ``Conv2D`` (``weight`` and ``bias`` are the leaves)."""

    __init__ = Conv2D.__init__
    __setattr__ = Conv2D.__setattr__
    __call__ = Conv2D.__call__
    replace = Conv2D.replace
    __repr__ = Conv2D.__repr__


#: Every layer class of this module, each a registered pytree and flax state.
LAYERS = (Conv1D, Conv3D, Conv2D, Conv2DTranspose, Conv1DTranspose, Conv3DTranspose)


def _make_layer(cls, spec, weight, bias):
    layer = object.__new__(cls)
    object.__setattr__(layer, "spec", spec)
    object.__setattr__(layer, "weight", weight)
    object.__setattr__(layer, "bias", bias)
    return layer


def _unflatten(cls, spec, leaves):
    return _make_layer(cls, spec, *leaves)


for _cls in LAYERS:
    jax.tree_util.register_pytree_with_keys(
        _cls,
        lambda layer: (
            (
                (jax.tree_util.GetAttrKey("weight"), layer.weight),
                (jax.tree_util.GetAttrKey("bias"), layer.bias),
            ),
            layer.spec,
        ),
        functools.partial(_unflatten, _cls),
        flatten_func=lambda layer: ((layer.weight, layer.bias), layer.spec),
    )
del _cls


# --- flax serialization ------------------------------------------------------
# flax.serialization.to_state_dict / from_state_dict (and to_bytes / from_bytes)
# take the layer as {"weight": ..., "bias": ...}: registered through flax's
# register_serialization_state where flax is installed.


def _to_state_dict(layer):
    return {"weight": layer.weight, "bias": layer.bias}


def _from_state_dict(serialization, layer, state):
    if not isinstance(state, dict) or set(state) != {"weight", "bias"}:
        got = sorted(state) if isinstance(state, dict) else type(state).__name__
        msg = f"the state of an xcorr {type(layer).__name__} is a dict with the keys 'bias' and 'weight'; got {got}"
        raise ValueError(msg)
    params = {}
    for name in ("weight", "bias"):
        current = getattr(layer, name)
        value = serialization.from_state_dict(current, state[name], name=name)
        if current is None or value is None:
            if (current is None) != (value is None):
                msg = f"the layer's {name} is {'None' if current is None else 'an array'}; the state's is {value!r:.60}"
                raise ValueError(msg)
            params[name] = None
            continue
        if tuple(value.shape) != tuple(current.shape):
            msg = f"state[{name!r}] must have the layer's shape {tuple(current.shape)}; got {tuple(value.shape)}"
            raise ValueError(msg)
        params[name] = jnp.asarray(value, dtype=current.dtype)
    return layer.replace(**params)


try:
    from flax import serialization as _serialization
except ImportError:  # flax not installed: nothing to register with
    _serialization = None
if _serialization is not None:
    for _cls in LAYERS:
        _serialization.register_serialization_state(
            _cls, _to_state_dict, functools.partial(_from_state_dict, _serialization), override=True
        )
    del _cls
