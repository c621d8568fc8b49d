"""``Conv2D`` and ``DepthwiseConv2D``: Keras' layers computed by ``corr2d_multi``, with xcorr's ``boundary`` and ``method``;
what they share with ``Conv1D`` and ``Conv3D`` (``_Correlating``, ``_Filtering``)."""

from __future__ import annotations

from typing import Any, Literal

import keras

from ...toolkit import BOUNDARY_ALIASES, MODES, Array, Boundary, Method, Mode, corr1d_multi, corr2d_multi, corr3d_multi
from .base import METHODS, Layer, Pair, choice, positive

#: The correlation of each rank (the number of spatial axes).
_FUNCTIONS: dict[int, Any] = {1: corr1d_multi, 2: corr2d_multi, 3: corr3d_multi}


class _Correlating(Layer):
    """Conv1D, Conv2D, Conv3D and DepthwiseConv2D: ``corr{rank}d_multi`` with xcorr's ``boundary`` and ``method``."""

    _modes = MODES

    def _extras(self, boundary: object, method: object) -> None:
        self.boundary = BOUNDARY_ALIASES[choice("boundary", boundary, BOUNDARY_ALIASES)]
        self.method = choice("method", method, METHODS)

    def _size(self, axis: int, size: int) -> int:
        span, stride = self._spans()[axis], self.strides[axis]
        if self.padding == "valid":
            return (size - span) // stride + 1
        if self.padding == "same":
            return -(-size // stride)
        return (size + span - 2) // stride + 1  # "full"

    def _mode_padding(self) -> tuple[str, Any]:
        """The correlation's ``mode=`` and ``padding=`` for the layer's ``padding``."""
        # Keras' "same" zero padding is lax's "SAME" (ceil(size / stride) outputs, the odd
        # element after the input), which corr{1,2,3}d_multi take as padding=; with another
        # boundary it is the function's centred "same" mode.
        if self.padding == "same" and self.boundary == "fill":
            return "valid", "SAME"
        return self.padding, None

    def _correlate(self, inputs: Array, w: Array, groups: int) -> Array:
        mode, padding = self._mode_padding()
        return self._compute(
            _FUNCTIONS[self._rank], inputs, w, mode=mode, padding=padding, boundary=self.boundary,
            stride=self.strides, groups=groups, method=self.method,
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "boundary": self.boundary, "method": self.method}


class _Filtering(_Correlating):
    """Conv1D, Conv2D and Conv3D: ``filters`` outputs, ``groups``, a kernel ``(*kernel_size, in // groups, filters)``."""

    def _filters_setup(self, filters: object, groups: object, boundary: object, method: object,
                       *setup: Any) -> None:
        """Checks and keeps ``filters`` and ``groups``, then ``_setup(*setup)`` and ``_extras(boundary, method)``."""
        self.filters = positive("filters", filters)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or self.filters % groups:
            msg = f"groups must be an int >= 1 that divides filters={filters}; got {groups!r}"
            raise ValueError(msg)
        self.groups = groups
        self._setup(*setup)
        self._extras(boundary, method)

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        if channels % self.groups:
            msg = f"groups={self.groups} must divide the input's {channels} channels"
            raise ValueError(msg)
        return (*self.kernel_size, channels // self.groups, self.filters)

    def call(self, inputs: Array) -> Array:
        return self._correlate(inputs, self._oihw(), self.groups)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "groups": self.groups}


@keras.saving.register_keras_serializable(package="xcorr")
class Conv2D(_Filtering):
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
        self._filters_setup(filters, groups, boundary, method, kernel_size, strides, padding, data_format,
                            dilation_rate, activation, use_bias, (bias_initializer, bias_regularizer, bias_constraint),
                            (kernel_initializer, kernel_regularizer, kernel_constraint))


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

    _kernel = "depthwise"

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
        self.depth_multiplier = positive("depth_multiplier", depth_multiplier)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                    (bias_initializer, bias_regularizer, bias_constraint),
                    (depthwise_initializer, depthwise_regularizer, depthwise_constraint))
        self._extras(boundary, method)

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (*self.kernel_size, channels, self.depth_multiplier)

    def _outputs(self, input_shape: tuple[int | None, ...]) -> int:
        return self._input_channels(input_shape) * self.depth_multiplier

    def call(self, inputs: Array) -> Array:
        kh, kw, channels, multiplier = self.kernel.shape
        # (kh, kw, C, M) -> (C*M, 1, kh, kw): output channel c*M + m reads kernel[:, :, c, m]
        return self._correlate(inputs, self._oihw((kh, kw, 1, channels * multiplier)), channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier}
