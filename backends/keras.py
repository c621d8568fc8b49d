"""Keras 3 layers: xcorr's correlations inside ``keras.layers.Layer`` (public as ``xcorr.keras``).

``Conv2D``, ``Conv2DTranspose`` and ``DepthwiseConv2D`` take the arguments of
Keras' layers of those names, hold their weights as Keras variables in
Keras' layouts (initializers, regularizers and constraints through
``add_weight``, as Keras does), and compute ``xcorr.corr2d_multi`` or
``xcorr.conv_transpose2d`` on the arrays of the Keras backend in use, so
xcorr's jax or torch adapter does the work, autodiff and ``jit_compile``
included. Keras' other backends: "numpy" runs inference only (no gradients
there), and TensorFlow tensors are no array-API arrays, so "tensorflow" is
refused when a layer is built.

The classes are registered for Keras serialization (package "xcorr") when
this module is imported, which ``import xcorr.keras`` does; ``import
xcorr`` loads no framework.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import keras

from ..toolkit import BOUNDARY_ALIASES, MODES, Array, Boundary, Method, Mode, conv_transpose2d, corr2d_multi

__all__ = ["Conv2D", "Conv2DTranspose", "DepthwiseConv2D"]

#: Keras backends whose tensors xcorr's adapters take.
BACKENDS = ("jax", "torch", "numpy")
#: The values of ``method=``.
METHODS: tuple[str, ...] = get_args(Method)
Pair = int | tuple[int, int]


# -- arguments ------------------------------------------------------------------
def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be an int >= 1; got {value!r}"
        raise ValueError(msg)
    return value


def _pair(name: str, value: object, minimum: int = 1) -> tuple[int, int]:
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in items):
        msg = f"{name} must be an int >= {minimum} or a pair of them; got {value!r}"
        raise ValueError(msg)
    return (items[0], items[1])


def _choice(name: str, value: object, choices: tuple[str, ...] | dict[str, str]) -> str:
    if not isinstance(value, str) or value not in choices:
        msg = f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        raise ValueError(msg)
    return value


def _data_format(value: object) -> str:
    value = keras.config.image_data_format() if value is None else value
    return _choice("data_format", value, ("channels_last", "channels_first"))


def _use_bias(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"use_bias must be True or False; got {value!r}"
        raise TypeError(msg)
    return value


_GETTERS = {"activation": "activations", "initializer": "initializers", "regularizer": "regularizers",
            "constraint": "constraints"}


def _keras_get(name: str, value: object) -> Any:
    """``keras.activations.get`` and the like for the argument ``name``, whose error names it."""
    module = _GETTERS[name.rsplit("_", 1)[-1]]
    try:
        return getattr(keras, module).get(value)
    except (ValueError, TypeError) as err:
        msg = f"{name} must be None, a name or an object that keras.{module}.get takes; got {value!r} ({err})"
        raise ValueError(msg) from err


def _too_small(layer: keras.layers.Layer, input_shape: tuple[int | None, ...]) -> ValueError:
    return ValueError(
        f"Computed output size would be zero or negative: {type(layer).__name__} with "
        f"kernel_size={layer.kernel_size}, strides={layer.strides}, dilation_rate={layer.dilation_rate}, "
        f"padding={layer.padding!r} on an input of shape {tuple(input_shape)}; each spatial size must "
        "give at least one output"
    )


class _Conv(keras.layers.Layer):
    """What the three layers share: validation, weights, the output shape, activation and config."""

    #: the modes ``padding=`` takes
    _modes: tuple[str, ...] = ("valid", "same")

    def _setup(self, kernel_size: Pair, strides: Pair, padding: str, data_format: str | None, dilation_rate: Pair,
               activation: Any, use_bias: bool, bias_initializer: Any, bias_regularizer: Any,
               bias_constraint: Any) -> None:
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.strides = _pair("strides", strides)
        self.dilation_rate = _pair("dilation_rate", dilation_rate)
        self.padding = _choice("padding", padding.lower() if isinstance(padding, str) else padding, self._modes)
        self.data_format = _data_format(data_format)
        self.activation = _keras_get("activation", activation)
        self.use_bias = _use_bias(use_bias)
        self.bias_initializer = _keras_get("bias_initializer", bias_initializer)
        self.bias_regularizer = _keras_get("bias_regularizer", bias_regularizer)
        self.bias_constraint = _keras_get("bias_constraint", bias_constraint)
        self.input_spec = keras.layers.InputSpec(ndim=4)
        self.kernel: Any = None
        self.bias: Any = None

    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _spans(self) -> tuple[int, int]:
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation_rate
        return (dh * (kh - 1) + 1, dw * (kw - 1) + 1)

    def _input_channels(self, input_shape: tuple[int | None, ...]) -> int:
        if len(input_shape) != 4:
            msg = f"{type(self).__name__} takes 4-D inputs (batch and 3 axes); got shape {tuple(input_shape)}"
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

    def _add_weights(self, input_shape: tuple[int | None, ...], kernel_shape: tuple[int, ...], outputs: int,
                     initializer: Any, regularizer: Any, constraint: Any) -> None:
        channels = input_shape[self._channel_axis]
        self.compute_output_shape(input_shape)  # raises, as Keras' layers do, where no output would remain
        self.kernel = self.add_weight(
            name="kernel", shape=kernel_shape, initializer=initializer, regularizer=regularizer,
            constraint=constraint, trainable=True, dtype=self.dtype,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(outputs,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint, trainable=True,
                dtype=self.dtype,
            )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={self._channel_axis: channels})

    def _shape(self, input_shape: tuple[int | None, ...], outputs: int, rows: int | None,
               cols: int | None) -> tuple[int | None, ...]:
        if any(size is not None and size < 1 for size in (rows, cols)):
            raise _too_small(self, input_shape)
        if self.data_format == "channels_last":
            return (input_shape[0], rows, cols, outputs)
        return (input_shape[0], outputs, rows, cols)

    def _spatial(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, int | None]:
        if self.data_format == "channels_last":
            return input_shape[1], input_shape[2]
        return input_shape[2], input_shape[3]

    def _bias(self) -> Array | None:
        return keras.ops.convert_to_tensor(self.bias) if self.use_bias else None

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
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            bias_regularizer=serialize(self.bias_regularizer),
            activity_regularizer=serialize(self.activity_regularizer),
            bias_constraint=serialize(self.bias_constraint),
        )
        return config


def _out_size(size: int | None, span: int, stride: int, padding: str) -> int | None:
    if size is None:
        return None
    if padding == "valid":
        return (size - span) // stride + 1
    if padding == "same":
        return -(-size // stride)
    return (size + span - 2) // stride + 1  # "full"


class _Correlating(_Conv):
    """Conv2D and DepthwiseConv2D: ``corr2d_multi`` with xcorr's ``boundary`` and ``method``."""

    _modes = MODES

    def _outputs(self, input_shape: tuple[int | None, ...]) -> int:
        raise NotImplementedError

    def _extras(self, boundary: object, method: object) -> None:
        self.boundary = BOUNDARY_ALIASES[_choice("boundary", boundary, BOUNDARY_ALIASES)]
        self.method = _choice("method", method, METHODS)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        rows, cols = (
            _out_size(size, span, stride, self.padding)
            for size, span, stride in zip(self._spatial(input_shape), self._spans(), self.strides)
        )
        return self._shape(input_shape, self._outputs(input_shape), rows, cols)

    def _correlate(self, inputs: Array, w: Array, groups: int) -> Array:
        # Keras' "same" zero padding is lax's "SAME" (ceil(size / stride) outputs, the odd
        # element after the input), which corr2d_multi takes as padding=; with another
        # boundary it is corr2d's centred "same" mode.
        same_fill = self.padding == "same" and self.boundary == "fill"
        outputs = corr2d_multi(
            keras.ops.convert_to_tensor(inputs),
            w,
            bias=self._bias(),
            mode="valid" if same_fill else self.padding,
            padding="SAME" if same_fill else None,
            boundary=self.boundary,
            stride=self.strides,
            dilation=self.dilation_rate,
            groups=groups,
            method=self.method,
            data_format=self.data_format,
        )
        return self.activation(outputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(boundary=self.boundary, method=self.method)
        return config


@keras.saving.register_keras_serializable(package="xcorr")
class Conv2D(_Correlating):
    """``keras.layers.Conv2D`` computed by ``xcorr.corr2d_multi``, plus xcorr's boundaries and methods.

    Takes ``keras.layers.Conv2D``'s arguments with their meaning and the same
    weight layout (``kernel`` of shape ``(kh, kw, in_channels // groups,
    filters)``, ``bias`` of shape ``(filters,)``), so
    ``set_weights(keras_conv.get_weights())`` carries a Keras layer's weights
    over and the two compute the same numbers, gradients, regularization
    losses and constrained weights.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
        Height and width of the kernel.
    strides : int or (int, int), default 1
        Step between output windows, as in ``keras.layers.Conv2D``; unlike
        Keras, it may be above 1 together with ``dilation_rate``.
    padding : {"valid", "same", "full"}, default "valid"
        "valid" and "same" as in Keras (any case; "same" pads for
        ``ceil(size / stride)`` outputs, the odd element after the input);
        "full" is every overlap, as in ``xcorr.corr2d``.
    data_format : {"channels_last", "channels_first"}, optional
        Default: ``keras.config.image_data_format()``.
    dilation_rate : int or (int, int), default 1
        Spacing between kernel taps.
    groups : int, default 1
        Grouped convolution; divides the input channels and ``filters``.
    activation : name, callable or None, default None
        Applied to the output, as ``keras.activations.get`` resolves it.
    use_bias : bool, default True
        Whether the layer adds a learnable bias of shape ``(filters,)``.
    kernel_initializer : name, ``keras.initializers.Initializer`` or callable, default "glorot_uniform"
        How the kernel is drawn, as in Keras.
    bias_initializer : name, ``keras.initializers.Initializer`` or callable, default "zeros"
        How the bias is drawn.
    kernel_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the kernel; its loss is in ``layer.losses`` and
        ``model.losses``.
    bias_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the bias.
    activity_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the layer's output.
    kernel_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the kernel by the optimizer after each step.
    bias_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the bias by the optimizer after each step.
    boundary : {"fill", "wrap", "symm", "reflect", "edge", ...}, default "fill"
        How the input is extended in "same" and "full" padding, as in
        ``xcorr.corr2d`` ("fill" is Keras' zero padding). With strides above
        1, "same" padding with another boundary centres the extension as
        ``xcorr.corr2d`` does (the odd element before the input).
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How ``corr2d_multi`` computes the correlation.
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ``trainable``).

    Raises
    ------
    ValueError, TypeError
        At construction, for an argument out of its range (the message names
        it, its value and what it takes); when built or called symbolically,
        for an input whose output would be empty ("Computed output size would
        be zero or negative", as Keras).

    Examples
    --------
    >>> import numpy as np
    >>> import keras
    >>> from xcorr.keras import Conv2D
    >>> x = np.random.default_rng(0).normal(size=(2, 9, 9, 3)).astype("float32")
    >>> ours, theirs = Conv2D(4, 3, strides=2, padding="same"), keras.layers.Conv2D(4, 3, strides=2, padding="same")
    >>> ours.build(x.shape), theirs.build(x.shape), ours.set_weights(theirs.get_weights())
    (None, None, None)
    >>> tuple(ours(x).shape), bool(np.allclose(ours(x), theirs(x), atol=1e-5))
    ((2, 5, 5, 4), True)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Pair,
        strides: Pair = 1,
        padding: Mode = "valid",
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: Pair = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        boundary: Boundary = "fill",
        method: Method = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = _positive("filters", filters)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or filters % groups:
            msg = f"groups must be an int >= 1 that divides filters={filters}; got {groups!r}"
            raise ValueError(msg)
        self.groups = groups
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                    bias_initializer, bias_regularizer, bias_constraint)
        self.kernel_initializer = _keras_get("kernel_initializer", kernel_initializer)
        self.kernel_regularizer = _keras_get("kernel_regularizer", kernel_regularizer)
        self.kernel_constraint = _keras_get("kernel_constraint", kernel_constraint)
        self._extras(boundary, method)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = self._input_channels(input_shape)
        if channels % self.groups:
            msg = f"groups={self.groups} must divide the input's {channels} channels"
            raise ValueError(msg)
        self._add_weights(
            input_shape, (*self.kernel_size, channels // self.groups, self.filters), self.filters,
            self.kernel_initializer, self.kernel_regularizer, self.kernel_constraint,
        )

    def _outputs(self, input_shape: tuple[int | None, ...]) -> int:
        return self.filters

    def call(self, inputs: Array) -> Array:
        w = keras.ops.transpose(keras.ops.convert_to_tensor(self.kernel), (3, 2, 0, 1))  # HWIO -> OIHW
        return self._correlate(inputs, w, self.groups)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            filters=self.filters,
            groups=self.groups,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=serialize(self.kernel_regularizer),
            kernel_constraint=serialize(self.kernel_constraint),
        )
        return config


@keras.saving.register_keras_serializable(package="xcorr")
class DepthwiseConv2D(_Correlating):
    """``keras.layers.DepthwiseConv2D`` computed by ``xcorr.corr2d_multi`` (``groups`` = input channels).

    Each input channel ``c`` is correlated with its own ``depth_multiplier``
    kernels; output channel ``c * depth_multiplier + m`` is channel ``c``
    correlated with ``kernel[:, :, c, m]``, as in Keras. The kernel has Keras'
    layout ``(kh, kw, in_channels, depth_multiplier)``, the bias ``(in_channels
    * depth_multiplier,)``.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Height and width of the kernel.
    strides : int or (int, int), default 1
        Step between output windows.
    padding : {"valid", "same", "full"}, default "valid"
        As in ``xcorr.keras.Conv2D``.
    depth_multiplier : int, default 1
        Output channels per input channel.
    data_format : {"channels_last", "channels_first"}, optional
        Default: ``keras.config.image_data_format()``.
    dilation_rate : int or (int, int), default 1
        Spacing between kernel taps.
    activation : name, callable or None, default None
        Applied to the output.
    use_bias : bool, default True
        Whether the layer adds a learnable bias.
    depthwise_initializer : name, ``keras.initializers.Initializer`` or callable, default "glorot_uniform"
        How the kernel is drawn.
    bias_initializer : name, ``keras.initializers.Initializer`` or callable, default "zeros"
        How the bias is drawn.
    depthwise_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the kernel (in ``layer.losses``).
    bias_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the bias.
    activity_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the layer's output.
    depthwise_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the kernel after each optimizer step.
    bias_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the bias after each optimizer step.
    boundary : {"fill", "wrap", "symm", "reflect", "edge", ...}, default "fill"
        How the input is extended in "same" and "full" padding, as in
        ``xcorr.keras.Conv2D``.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How ``corr2d_multi`` computes the correlation.
    **kwargs
        Passed to ``keras.layers.Layer``.

    Examples
    --------
    >>> import numpy as np
    >>> from xcorr.keras import DepthwiseConv2D
    >>> layer = DepthwiseConv2D(3, depth_multiplier=2, padding="same", boundary="reflect")
    >>> tuple(layer(np.ones((1, 5, 5, 3), "float32")).shape), tuple(layer.kernel.shape)
    ((1, 5, 5, 6), (3, 3, 3, 2))
    """

    def __init__(
        self,
        kernel_size: Pair,
        strides: Pair = 1,
        padding: Mode = "valid",
        depth_multiplier: int = 1,
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: Pair = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        boundary: Boundary = "fill",
        method: Method = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.depth_multiplier = _positive("depth_multiplier", depth_multiplier)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                    bias_initializer, bias_regularizer, bias_constraint)
        self.depthwise_initializer = _keras_get("depthwise_initializer", depthwise_initializer)
        self.depthwise_regularizer = _keras_get("depthwise_regularizer", depthwise_regularizer)
        self.depthwise_constraint = _keras_get("depthwise_constraint", depthwise_constraint)
        self._extras(boundary, method)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = self._input_channels(input_shape)
        self._add_weights(
            input_shape, (*self.kernel_size, channels, self.depth_multiplier), channels * self.depth_multiplier,
            self.depthwise_initializer, self.depthwise_regularizer, self.depthwise_constraint,
        )

    def _outputs(self, input_shape: tuple[int | None, ...]) -> int:
        return self._input_channels(input_shape) * self.depth_multiplier

    def call(self, inputs: Array) -> Array:
        kh, kw, channels, multiplier = self.kernel.shape
        # (kh, kw, C, M) -> (C*M, 1, kh, kw): output channel c*M + m reads kernel[:, :, c, m]
        w = keras.ops.reshape(keras.ops.convert_to_tensor(self.kernel), (kh, kw, 1, channels * multiplier))
        return self._correlate(inputs, keras.ops.transpose(w, (3, 2, 0, 1)), channels)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            depth_multiplier=self.depth_multiplier,
            depthwise_initializer=keras.initializers.serialize(self.depthwise_initializer),
            depthwise_regularizer=serialize(self.depthwise_regularizer),
            depthwise_constraint=serialize(self.depthwise_constraint),
        )
        return config


def _transpose_axis(span: int, stride: int, padding: str, output_padding: int | None) -> tuple[int, int, int]:
    """``(crop before, crop after, output_padding)`` of xcorr's ``conv_transpose2d`` for Keras' rule on one axis.

    Keras (its ``conv_transpose`` on every backend) pads the zero-inserted
    input by ``left`` and ``right`` before a valid correlation with the
    flipped kernel; that is the uncropped transpose cropped by ``span - 1 -
    left`` before and ``span - 1 - right`` after, and a negative crop after
    is zeros added after, xcorr's ``output_padding``.
    """
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        left, right = span - 1, span - 1 + extra
    else:
        total = stride + span - 2 if output_padding is None else span + span % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, span - 1)
        right = total - left
    before, after = span - 1 - left, span - 1 - right
    return before, max(after, 0), max(-after, 0)


@keras.saving.register_keras_serializable(package="xcorr")
class Conv2DTranspose(_Conv):
    """``keras.layers.Conv2DTranspose`` computed by ``xcorr.conv_transpose2d``.

    The same arguments, output sizes and weights as Keras' layer: ``kernel``
    of shape ``(kh, kw, filters, in_channels)``, ``bias`` of shape
    ``(filters,)``; ``set_weights(keras_layer.get_weights())`` carries a Keras
    layer's weights over.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
        Height and width of the kernel.
    strides : int or (int, int), default 1
        Upsampling factor: the stride of the forward convolution this is the
        transpose of (unlike Keras, it may be above 1 together with
        ``dilation_rate``).
    padding : {"valid", "same"}, default "valid"
        Keras' rule: "same" gives ``size * stride`` rows, "valid" ``(size -
        1) * stride + max(span, stride)``, where ``span`` is the dilated
        kernel's height.
    output_padding : int, (int, int) or None, default None
        Rows and columns added after the output, each smaller than the
        stride; ``None`` lets ``padding`` choose, as in Keras.
    data_format : {"channels_last", "channels_first"}, optional
        Default: ``keras.config.image_data_format()``.
    dilation_rate : int or (int, int), default 1
        Spacing between kernel taps of the forward convolution.
    activation : name, callable or None, default None
        Applied to the output.
    use_bias : bool, default True
        Whether the layer adds a learnable bias of shape ``(filters,)``.
    kernel_initializer : name, ``keras.initializers.Initializer`` or callable, default "glorot_uniform"
        How the kernel is drawn.
    bias_initializer : name, ``keras.initializers.Initializer`` or callable, default "zeros"
        How the bias is drawn.
    kernel_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the kernel (in ``layer.losses``).
    bias_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the bias.
    activity_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the layer's output.
    kernel_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the kernel after each optimizer step.
    bias_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the bias after each optimizer step.
    **kwargs
        Passed to ``keras.layers.Layer``.

    Examples
    --------
    >>> import numpy as np
    >>> from xcorr.keras import Conv2DTranspose
    >>> up = Conv2DTranspose(2, 3, strides=2, padding="same")
    >>> tuple(up(np.ones((1, 4, 4, 3), "float32")).shape), tuple(up.kernel.shape)
    ((1, 8, 8, 2), (3, 3, 2, 3))
    """

    def __init__(
        self,
        filters: int,
        kernel_size: Pair,
        strides: Pair = 1,
        padding: Literal["valid", "same"] = "valid",
        output_padding: Pair | None = None,
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: Pair = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = _positive("filters", filters)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                    bias_initializer, bias_regularizer, bias_constraint)
        self.output_padding = None if output_padding is None else _pair("output_padding", output_padding, 0)
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            msg = (
                f"output_padding must be smaller than strides={self.strides} on each axis; "
                f"got output_padding={output_padding!r}"
            )
            raise ValueError(msg)
        self.kernel_initializer = _keras_get("kernel_initializer", kernel_initializer)
        self.kernel_regularizer = _keras_get("kernel_regularizer", kernel_regularizer)
        self.kernel_constraint = _keras_get("kernel_constraint", kernel_constraint)

    def _axes(self) -> list[tuple[int, int, int]]:
        pads = self.output_padding or (None, None)
        return [
            _transpose_axis(span, stride, self.padding, pad)
            for span, stride, pad in zip(self._spans(), self.strides, pads)
        ]

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = self._input_channels(input_shape)
        self._add_weights(
            input_shape, (*self.kernel_size, self.filters, channels), self.filters,
            self.kernel_initializer, self.kernel_regularizer, self.kernel_constraint,
        )

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        rows, cols = (
            None if size is None else (size - 1) * stride + span - before - after + extra
            for size, span, stride, (before, after, extra) in zip(
                self._spatial(input_shape), self._spans(), self.strides, self._axes()
            )
        )
        return self._shape(input_shape, self.filters, rows, cols)

    def call(self, inputs: Array) -> Array:
        (top, bottom, extra_rows), (left, right, extra_cols) = self._axes()
        w = keras.ops.transpose(keras.ops.convert_to_tensor(self.kernel), (3, 2, 0, 1))  # (h, w, O, I) -> (I, O, h, w)
        outputs = conv_transpose2d(
            keras.ops.convert_to_tensor(inputs),
            w,
            bias=self._bias(),
            stride=self.strides,
            padding=((top, bottom), (left, right)),
            output_padding=(extra_rows, extra_cols),
            dilation=self.dilation_rate,
            data_format=self.data_format,
        )
        return self.activation(outputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            filters=self.filters,
            output_padding=self.output_padding,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=serialize(self.kernel_regularizer),
            kernel_constraint=serialize(self.kernel_constraint),
        )
        return config
