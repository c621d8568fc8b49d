"""``Conv1DTranspose``, ``Conv2DTranspose`` and ``Conv3DTranspose``: Keras' layers computed by
``conv_transpose1d``, ``conv_transpose2d`` and ``conv_transpose3d``, with Keras' output sizes."""

from __future__ import annotations

from typing import Any, Literal

import keras

from ...toolkit import Array, conv_transpose1d, conv_transpose2d, conv_transpose3d
from .base import Layer, Pair, ints, positive

#: The transposed convolution of each rank (the number of spatial axes).
_FUNCTIONS: dict[int, Any] = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}


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


class _Transposing(Layer):
    """Conv1DTranspose, Conv2DTranspose and Conv3DTranspose: Keras' rule per axis, a kernel
    ``(*kernel_size, filters, in_channels)``, ``conv_transpose{rank}d``."""

    def _transpose_setup(self, filters: object, output_padding: object, *setup: Any) -> None:
        """Checks and keeps ``filters`` and ``output_padding`` (after ``_setup(*setup)``)."""
        self.filters = positive("filters", filters)
        self._setup(*setup)
        self.output_padding: Any = (
            None if output_padding is None else ints("output_padding", output_padding, self._rank, 0)
        )
        if self.output_padding is not None and any(p >= s for p, s in zip(self.output_padding, self.strides)):
            msg = (
                f"output_padding must be smaller than strides={self.strides} on each axis; "
                f"got output_padding={output_padding!r}"
            )
            raise ValueError(msg)

    def _axes(self) -> list[tuple[int, int, int]]:
        pads = self.output_padding or (None,) * self._rank
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
        axes = self._axes()
        crops = [(before, after) for before, after, _ in axes]
        extras = [extra for _, _, extra in axes]
        return self._compute(  # the kernel (*k, O, I) -> (I, O, *k), torch's transposed layout
            _FUNCTIONS[self._rank], inputs, self._oihw(), stride=self.strides,
            padding=crops[0] if self._rank == 1 else tuple(crops),
            output_padding=extras[0] if self._rank == 1 else tuple(extras),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "output_padding": self.output_padding}


@keras.saving.register_keras_serializable(package="xcorr")
class Conv2DTranspose(_Transposing):
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
        self._transpose_setup(filters, output_padding, kernel_size, strides, padding, data_format, dilation_rate,
                              activation, use_bias, (bias_initializer, bias_regularizer, bias_constraint),
                              (kernel_initializer, kernel_regularizer, kernel_constraint))


@keras.saving.register_keras_serializable(package="xcorr")
class Conv1DTranspose(_Transposing):
    """``keras.layers.Conv1DTranspose`` computed by ``xcorr.conv_transpose1d``.

    The same arguments, output lengths and weights as Keras' layer: ``kernel``
    of shape ``(kernel_size, filters, in_channels)``, ``bias`` of shape
    ``(filters,)``; ``set_weights(keras_layer.get_weights())`` carries a Keras
    layer's weights over and the two compute the same numbers and gradients.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int,)
        Number of kernel taps.
    strides : int or (int,), default 1
        Upsampling factor: the stride of the forward convolution this is the
        transpose of (unlike Keras, it may be above 1 together with
        ``dilation_rate``).
    padding : {"valid", "same"}, default "valid"
        Keras' rule: "same" gives ``length * stride`` samples, "valid"
        ``(length - 1) * stride + max(span, stride)``, where ``span`` is the
        dilated kernel's length.
    output_padding : int, (int,) or None, default None
        Samples added after the output, smaller than the stride; ``None``
        lets ``padding`` choose, as in Keras.
    data_format : {"channels_last", "channels_first"}, optional
        Input ``(N, L, C)`` or ``(N, C, L)``. Default:
        ``keras.config.image_data_format()``.
    dilation_rate : int or (int,), default 1
        Spacing between the kernel's taps in the forward convolution.
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
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ``trainable``).

    Examples
    --------
    >>> import numpy as np
    >>> from xcorr.keras import Conv1DTranspose
    >>> up = Conv1DTranspose(2, 4, strides=2, padding="same")
    >>> tuple(up(np.ones((1, 10, 3), "float32")).shape), tuple(up.kernel.shape)
    ((1, 20, 2), (4, 2, 3))
    """

    _rank = 1

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int],
        strides: int | tuple[int] = 1,
        padding: Literal["valid", "same"] = "valid",
        output_padding: int | tuple[int] | None = None,
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: int | tuple[int] = 1,
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
        self._transpose_setup(filters, output_padding, kernel_size, strides, padding, data_format, dilation_rate,
                              activation, use_bias, (bias_initializer, bias_regularizer, bias_constraint),
                              (kernel_initializer, kernel_regularizer, kernel_constraint))


@keras.saving.register_keras_serializable(package="xcorr")
class Conv3DTranspose(_Transposing):
    """``keras.layers.Conv3DTranspose`` computed by ``xcorr.conv_transpose3d``.

    The same arguments, output sizes and weights as Keras' layer: ``kernel``
    of shape ``(kd, kh, kw, filters, in_channels)``, ``bias`` of shape
    ``(filters,)``; ``set_weights(keras_layer.get_weights())`` carries a Keras
    layer's weights over and the two compute the same numbers and gradients.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int, int)
        Depth, height and width of the kernel.
    strides : int or (int, int, int), default 1
        Upsampling factor along each axis: the stride of the forward
        convolution this is the transpose of.
    padding : {"valid", "same"}, default "valid"
        Keras' rule per axis: "same" gives ``size * stride``, "valid" ``(size
        - 1) * stride + max(span, stride)`` for a dilated kernel span ``span``.
    output_padding : int, (int, int, int) or None, default None
        Planes, rows and columns added after the output, each smaller than
        its axis' stride; ``None`` lets ``padding`` choose, as in Keras.
    data_format : {"channels_last", "channels_first"}, optional
        Input ``(N, D, H, W, C)`` or ``(N, C, D, H, W)``. Default:
        ``keras.config.image_data_format()``.
    dilation_rate : int or (int, int, int), default 1
        Spacing between kernel taps along each axis.
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
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ``trainable``).

    Examples
    --------
    >>> import numpy as np
    >>> from xcorr.keras import Conv3DTranspose
    >>> up = Conv3DTranspose(2, 2, strides=2)
    >>> tuple(up(np.ones((1, 2, 3, 4, 3), "float32")).shape), tuple(up.kernel.shape)
    ((1, 4, 6, 8, 2), (2, 2, 2, 2, 3))
    """

    _rank = 3

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int, int],
        strides: int | tuple[int, int, int] = 1,
        padding: Literal["valid", "same"] = "valid",
        output_padding: int | tuple[int, int, int] | None = None,
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: int | tuple[int, int, int] = 1,
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
        self._transpose_setup(filters, output_padding, kernel_size, strides, padding, data_format, dilation_rate,
                              activation, use_bias, (bias_initializer, bias_regularizer, bias_constraint),
                              (kernel_initializer, kernel_regularizer, kernel_constraint))
