"""``Conv1D``: Keras' 1-D layer computed by ``corr1d_multi``, with Keras' causal padding and xcorr's boundaries."""

from __future__ import annotations

from typing import Any, Literal

import keras

from ...toolkit import MODES, Boundary, Method
from .conv import _Filtering


@keras.saving.register_keras_serializable(package="xcorr")
class Conv1D(_Filtering):
    """``keras.layers.Conv1D`` computed by ``xcorr.corr1d_multi``, plus xcorr's boundaries and methods.

    Takes ``keras.layers.Conv1D``'s arguments with their meaning and the same
    weight layout (``kernel`` of shape ``(kernel_size, in_channels // groups,
    filters)``, ``bias`` of shape ``(filters,)``), so
    ``set_weights(keras_conv.get_weights())`` carries a Keras layer's weights
    over and the two compute the same numbers and gradients.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int,)
        Number of kernel taps.
    strides : int or (int,), default 1
        Step between output windows; unlike Keras, it may be above 1
        together with ``dilation_rate``.
    padding : {"valid", "same", "causal", "full"}, default "valid"
        "valid", "same" and "causal" as in Keras (any case): "same" pads for
        ``ceil(length / stride)`` outputs, the odd sample after the signal;
        "causal" pads ``dilation_rate * (kernel_size - 1)`` samples on the
        left only. "full" is every overlap, as in ``xcorr.corr1d``.
    data_format : {"channels_last", "channels_first"}, optional
        Input ``(N, L, C)`` or ``(N, C, L)``. Default:
        ``keras.config.image_data_format()``.
    dilation_rate : int or (int,), default 1
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
        A penalty on the kernel; its loss is in ``layer.losses``.
    bias_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the bias.
    activity_regularizer : name, ``keras.regularizers.Regularizer`` or callable, optional
        A penalty on the layer's output.
    kernel_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the kernel by the optimizer after each step.
    bias_constraint : name, ``keras.constraints.Constraint`` or callable, optional
        Applied to the bias by the optimizer after each step.
    boundary : {"fill", "wrap", "symm", "reflect", "edge", ...}, default "fill"
        How the signal is extended by "same", "causal" and "full" padding,
        as in ``xcorr.corr1d`` ("fill" is Keras' zero padding). With strides
        above 1, "same" padding with another boundary centres the extension
        as ``xcorr.corr1d`` does.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How ``corr1d_multi`` computes the correlation.
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ``trainable``).

    Raises
    ------
    ValueError, TypeError
        At construction, for an argument out of its range (the message names
        it); when built, for an input whose output would be empty.

    Examples
    --------
    >>> import numpy as np
    >>> import keras
    >>> from xcorr.keras import Conv1D
    >>> x = np.random.default_rng(0).normal(size=(2, 10, 3)).astype("float32")
    >>> ours, theirs = Conv1D(4, 3, padding="causal"), keras.layers.Conv1D(4, 3, padding="causal")
    >>> ours.build(x.shape), theirs.build(x.shape), ours.set_weights(theirs.get_weights())
    (None, None, None)
    >>> tuple(ours(x).shape), bool(np.allclose(ours(x), theirs(x), atol=1e-5))
    ((2, 10, 4), True)
    """

    _rank = 1
    _modes = (*MODES, "causal")

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int],
        strides: int | tuple[int] = 1,
        padding: Literal["valid", "same", "causal", "full"] = "valid",
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: int | tuple[int] = 1,
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

    def _size(self, axis: int, size: int) -> int:
        if self.padding == "causal":
            return -(-size // self.strides[axis])
        return super()._size(axis, size)

    def _mode_padding(self) -> tuple[str, Any]:
        if self.padding == "causal":
            return "valid", (self._spans()[0] - 1, 0)
        return super()._mode_padding()
