"""What the Keras layers share: their arguments' checks, weights, output shape, bias, activation and config."""

from __future__ import annotations

from typing import Any, get_args

import keras

from ...toolkit import Array, Method

#: Keras backends whose tensors xcorr's adapters take.
BACKENDS = ("jax", "torch", "numpy")
#: The values of ``method=``.
METHODS: tuple[str, ...] = get_args(Method)
Pair = int | tuple[int, int]


# -- arguments ------------------------------------------------------------------
def positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be an int >= 1; got {value!r}"
        raise ValueError(msg)
    return value


def pair(name: str, value: object, minimum: int = 1) -> tuple[int, int]:
    first, second = ints(name, value, 2, minimum)
    return (first, second)


def ints(name: str, value: object, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """One int per spatial axis (``rank`` of them) from an int or a sequence of ``rank``."""
    items = value if isinstance(value, (tuple, list)) else (value,) * rank
    if len(items) != rank or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in items):
        what = "a pair of them" if rank == 2 else f"a sequence of {rank}"
        msg = f"{name} must be an int >= {minimum} or {what}; got {value!r}"
        raise ValueError(msg)
    return tuple(items)


def choice(name: str, value: object, choices: tuple[str, ...] | dict[str, str]) -> str:
    if not isinstance(value, str) or value not in choices:
        msg = f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        raise ValueError(msg)
    return value


_GETTERS = {"activation": "activations", "initializer": "initializers", "regularizer": "regularizers",
            "constraint": "constraints"}
#: What each weight takes: ``kernel_initializer``, ``bias_regularizer``, ...
_WEIGHT_ARGUMENTS = ("initializer", "regularizer", "constraint")


def _keras_get(name: str, value: object) -> Any:
    """``keras.activations.get`` and the like for the argument ``name``, whose error names it."""
    module = _GETTERS[name.rsplit("_", 1)[-1]]
    try:
        return getattr(keras, module).get(value)
    except (ValueError, TypeError) as err:
        msg = f"{name} must be None, a name or an object that keras.{module}.get takes; got {value!r} ({err})"
        raise ValueError(msg) from err


class Layer(keras.layers.Layer):
    """The layers' base: validation, weights, the output shape, bias, activation and config.

    A layer says how many channels it outputs (``_outputs``), its kernel's
    shape (``_kernel_shape``) and one output size per axis (``_size``).
    """

    #: the modes ``padding=`` takes
    _modes: tuple[str, ...] = ("valid", "same")
    #: the prefix of the kernel's arguments: ``kernel_initializer`` or ``depthwise_initializer``, ...
    _kernel = "kernel"
    #: the number of spatial axes (2 for the 2-D layers, 1 for ``Conv1D``, 3 for ``Conv3D``)
    _rank = 2

    def _setup(self, kernel_size: Pair, strides: Pair, padding: str, data_format: str | None, dilation_rate: Pair,
               activation: Any, use_bias: bool, bias: tuple[Any, Any, Any], kernel: tuple[Any, Any, Any]) -> None:
        """Checks and keeps the arguments; ``bias`` and ``kernel`` are (initializer, regularizer, constraint)."""
        self.kernel_size: Any = ints("kernel_size", kernel_size, self._rank)
        self.strides: Any = ints("strides", strides, self._rank)
        self.dilation_rate: Any = ints("dilation_rate", dilation_rate, self._rank)
        self.padding = choice("padding", padding.lower() if isinstance(padding, str) else padding, self._modes)
        data_format = keras.config.image_data_format() if data_format is None else data_format
        self.data_format = choice("data_format", data_format, ("channels_last", "channels_first"))
        self.activation = _keras_get("activation", activation)
        if not isinstance(use_bias, bool):
            msg = f"use_bias must be True or False; got {use_bias!r}"
            raise TypeError(msg)
        self.use_bias = use_bias
        for prefix, values in (("bias", bias), (self._kernel, kernel)):
            for argument, value in zip(_WEIGHT_ARGUMENTS, values):
                setattr(self, f"{prefix}_{argument}", _keras_get(f"{prefix}_{argument}", value))
        self.input_spec = keras.layers.InputSpec(ndim=self._rank + 2)
        self.kernel: Any = None
        self.bias: Any = None

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _spans(self) -> tuple[int, ...]:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate, strict=True))

    def _input_channels(self, input_shape: tuple[int | None, ...]) -> int:
        if len(input_shape) != self._rank + 2:
            msg = (
                f"{type(self).__name__} takes {self._rank + 2}-D inputs (batch and {self._rank + 1} axes); "
                f"got shape {tuple(input_shape)}"
            )
            raise ValueError(msg)
        backend = keras.backend.backend()
        if backend not in BACKENDS:
            msg = (
                f"xcorr.keras.{type(self).__name__} runs on the Keras backends {', '.join(BACKENDS)}; this is "
                f"{backend!r} (set KERAS_BACKEND before importing keras)"
            )
            raise RuntimeError(msg)
        channels = input_shape[self._channel_axis]
        if channels is None:
            msg = f"the input's channel axis ({self.data_format}) must be known; got shape {tuple(input_shape)}"
            raise ValueError(msg)
        return channels

    def _outputs(self, input_shape: tuple[int | None, ...]) -> int:
        return self.filters

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        raise NotImplementedError

    def _size(self, axis: int, size: int) -> int:
        raise NotImplementedError

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = self._input_channels(input_shape)
        weights = {"kernel": (self._kernel, self._kernel_shape(channels))}
        if self.use_bias:
            weights["bias"] = ("bias", (self._outputs(input_shape),))
        self.compute_output_shape(input_shape)  # raises, as Keras' layers do, where no output would remain
        for name, (prefix, shape) in weights.items():
            setattr(self, name, self.add_weight(
                name=name, shape=shape, initializer=getattr(self, f"{prefix}_initializer"),
                regularizer=getattr(self, f"{prefix}_regularizer"), constraint=getattr(self, f"{prefix}_constraint"),
                trainable=True, dtype=self.dtype,
            ))
        self.input_spec = keras.layers.InputSpec(ndim=self._rank + 2, axes={self._channel_axis: channels})

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        last = self.data_format == "channels_last"
        spatial = input_shape[1:-1] if last else input_shape[2:]
        sizes = tuple(None if size is None else self._size(axis, size) for axis, size in enumerate(spatial))
        outputs = self._outputs(input_shape)
        if any(size is not None and size < 1 for size in sizes):
            msg = (
                f"Computed output size would be zero or negative: {type(self).__name__} with "
                f"kernel_size={self.kernel_size}, strides={self.strides}, dilation_rate={self.dilation_rate}, "
                f"padding={self.padding!r} on an input of shape {tuple(input_shape)}; each spatial size must "
                "give at least one output"
            )
            raise ValueError(msg)
        if last:
            return (input_shape[0], *sizes, outputs)
        return (input_shape[0], outputs, *sizes)

    def _oihw(self, kernel_shape: tuple[int, ...] | None = None) -> Array:
        """The kernel (reshaped to ``kernel_shape`` first) as (O, I, *spatial) from Keras' (*spatial, I, O):
        (O, I, h, w) from (h, w, I, O) in 2-D, (O, I, l) in 1-D, (O, I, d, h, w) in 3-D."""
        kernel = keras.ops.convert_to_tensor(self.kernel)
        kernel = kernel if kernel_shape is None else keras.ops.reshape(kernel, kernel_shape)
        return keras.ops.transpose(kernel, (self._rank + 1, self._rank, *range(self._rank)))

    def _compute(self, function: Any, inputs: Array, w: Array, **kwargs: Any) -> Array:
        """``function(inputs, w, bias=..., dilation=..., data_format=..., **kwargs)``, then the activation."""
        bias = keras.ops.convert_to_tensor(self.bias) if self.use_bias else None
        outputs = function(keras.ops.convert_to_tensor(inputs), w, bias=bias, dilation=self.dilation_rate,
                           data_format=self.data_format, **kwargs)
        return self.activation(outputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            activity_regularizer=serialize(self.activity_regularizer),
        )
        for prefix in (self._kernel, "bias"):
            config.update({f"{prefix}_{a}": serialize(getattr(self, f"{prefix}_{a}")) for a in _WEIGHT_ARGUMENTS})
        return config
