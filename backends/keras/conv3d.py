"""``Conv3D``: Keras' 3-D layer computed by ``corr3d_multi``, with xcorr's boundaries and methods."""

from __future__ import annotations

from typing import Any, Literal

import keras

from ...toolkit import Boundary, Method, Mode
from .conv import _Filtering


@keras.saving.register_keras_serializable(package="xcorr")
class Conv3D(_Filtering):
    """``keras.layers.Conv3D`` computed by ``xcorr.corr3d_multi``, plus xcorr's boundaries and methods.

    Takes ``keras.layers.Conv3D``'s arguments with their meaning and the same
    weight layout (``kernel`` of shape ``(kd, kh, kw, in_channels // groups,
    filters)``, ``bias`` of shape ``(filters,)``), so
    ``set_weights(keras_conv.get_weights())`` carries a Keras layer's weights
    over and the two compute the same numbers and gradients.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int, int)
        Depth, height and width of the kernel.
    strides : int or (int, int, int), default 1
        Step between output windows along each axis; unlike Keras, it may
        be above 1 together with ``dilation_rate``.
    padding : {"valid", "same", "full"}, default "valid"
        "valid" and "same" as in Keras (any case): "same" pads for
        ``ceil(size / stride)`` outputs per axis, the odd element after the
        volume. "full" is every overlap, as in ``xcorr.corr3d``.
    data_format : {"channels_last", "channels_first"}, optional
        Input ``(N, D, H, W, C)`` or ``(N, C, D, H, W)``. Default:
        ``keras.config.image_data_format()``.
    dilation_rate : int or (int, int, int), default 1
        Spacing between kernel taps along each axis.
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
        How the volume is extended by "same" and "full" padding along all
        three axes, as in ``xcorr.corr3d`` ("fill" is Keras' zero padding).
        With another boundary, "same" is ``xcorr.corr3d``'s centred "same"
        mode (scipy's N-d centring), then every ``strides``-th output.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How ``corr3d_multi`` computes the correlation.
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
    >>> from xcorr.keras import Conv3D
    >>> x = np.random.default_rng(0).normal(size=(1, 4, 5, 6, 2)).astype("float32")
    >>> ours, theirs = Conv3D(3, 2, padding="same"), keras.layers.Conv3D(3, 2, padding="same")
    >>> ours.build(x.shape), theirs.build(x.shape), ours.set_weights(theirs.get_weights())
    (None, None, None)
    >>> tuple(ours(x).shape), bool(np.allclose(ours(x), theirs(x), atol=1e-5))
    ((1, 4, 5, 6, 3), True)
    """

    _rank = 3

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int, int],
        strides: int | tuple[int, int, int] = 1,
        padding: Mode = "valid",
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: int | tuple[int, int, int] = 1,
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
