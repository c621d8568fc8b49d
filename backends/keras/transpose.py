"""``Conv2DTranspose``: Keras' layer computed by ``conv_transpose2d``, with Keras' output sizes."""

from __future__ import annotations

from typing import Any, Literal

import keras

from ...toolkit import Array, conv_transpose2d
from .base import Layer, Pair, pair, positive


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
class Conv2DTranspose(Layer):
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
        self.filters = positive("filters", filters)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
                    (bias_initializer, bias_regularizer, bias_constraint),
                    (kernel_initializer, kernel_regularizer, kernel_constraint))
        self.output_padding = None if output_padding is None else pair("output_padding", output_padding, 0)
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            msg = (
                f"output_padding must be smaller than strides={self.strides} on each axis; "
                f"got output_padding={output_padding!r}"
            )
            raise ValueError(msg)

    def _axes(self) -> list[tuple[int, int, int]]:
        pads = self.output_padding or (None, None)
        return [
            _transpose_axis(span, stride, self.padding, pad)
            for span, stride, pad in zip(self._spans(), self.strides, pads)
        ]

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (*self.kernel_size, self.filters, channels)

    def _size(self, axis: int, size: int) -> int:
        before, after, extra = self._axes()[axis]
        return (size - 1) * self.strides[axis] + self._spans()[axis] - before - after + extra

    def call(self, inputs: Array) -> Array:
        (top, bottom, extra_rows), (left, right, extra_cols) = self._axes()
        return self._compute(  # the kernel (h, w, O, I) -> (I, O, h, w)
            conv_transpose2d, inputs, self._oihw(), stride=self.strides, padding=((top, bottom), (left, right)),
            output_padding=(extra_rows, extra_cols),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "output_padding": self.output_padding}
