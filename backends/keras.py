"""Keras 3 layer: xcorr's correlation inside ``keras.layers.Layer`` (public as ``xcorr.keras``).

The layer holds its kernel and bias as Keras variables (``add_weight``) and
computes ``xcorr.corr2d_multi`` on the arrays of the Keras backend in use, so
xcorr's jax or torch adapter does the work, autodiff and ``jit_compile``
included. Keras' other backends: "numpy" runs inference only (no gradients
there), and TensorFlow tensors are no array-API arrays, so "tensorflow" is
refused when the layer is built.

Imported only by ``import xcorr.keras``: ``import xcorr`` loads no framework.
"""

from __future__ import annotations

from typing import Any, Literal

import keras

from ..toolkit import BOUNDARY_ALIASES, MODES, Array, Boundary, Method, Mode, corr2d_multi

__all__ = ["Conv2D"]

#: Keras backends whose tensors xcorr's adapters take.
BACKENDS = ("jax", "torch", "numpy")


def _pair(name: str, value: object) -> tuple[int, int]:
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
        msg = f"{name} must be an int >= 1 or a pair of them; got {value!r}"
        raise ValueError(msg)
    return (items[0], items[1])


def _out_size(size: int | None, span: int, stride: int, padding: str) -> int | None:
    if size is None:
        return None
    if padding == "valid":
        return (size - span) // stride + 1 if size >= span else 0
    if padding == "same":
        return -(-size // stride)
    return (size + span - 2) // stride + 1  # "full"


@keras.saving.register_keras_serializable(package="xcorr")
class Conv2D(keras.layers.Layer):
    """A 2-D convolution layer of Keras 3 computed by ``xcorr.corr2d_multi``.

    Takes the arguments of ``keras.layers.Conv2D`` that describe the
    correlation, with the same meaning and the same weight layout (``kernel``
    of shape ``(kh, kw, in_channels // groups, filters)``, ``bias`` of shape
    ``(filters,)``), so ``set_weights(keras_conv.get_weights())`` carries a
    ``keras.layers.Conv2D``'s weights over and the two compute the same
    numbers. xcorr adds the "full" padding, the boundaries of ``corr2d``, and
    its ``method``.

    Parameters
    ----------
    filters : int
        Output channels.
    kernel_size : int or (int, int)
        Height and width of the kernel.
    strides, dilation_rate : int or (int, int), default 1
        As in ``keras.layers.Conv2D`` (both may be above 1 together).
    padding : {"valid", "same", "full"}, default "valid"
        "valid" and "same" as in Keras ("same" pads for ``ceil(size /
        stride)`` outputs, the odd element after the input, as Keras does);
        "full" is every overlap, as in ``xcorr.corr2d``.
    data_format : {"channels_last", "channels_first"}, optional
        Default: ``keras.config.image_data_format()``; passed to
        ``corr2d_multi``, which computes in that layout (jax convolves in
        NHWC, torch on the permuted view).
    groups : int, default 1
        Grouped convolution; divides the input channels and ``filters``.
    use_bias : bool, default True
    kernel_initializer, bias_initializer
        As in Keras ("glorot_uniform" and "zeros" by default).
    boundary : {"fill", "wrap", "symm", ...}, default "fill"
        How the input is extended in "same" and "full" padding, as in
        ``xcorr.corr2d`` ("fill" is zero padding, Keras' only one).
        With strides above 1, "same" padding other than "fill" centres the
        extension as ``xcorr.corr2d`` does (the odd element before the input).
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How ``corr2d_multi`` computes the correlation.
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ``trainable``).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = 1,
        padding: Mode = "valid",
        data_format: Literal["channels_last", "channels_first"] | None = None,
        dilation_rate: int | tuple[int, int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        boundary: Boundary = "fill",
        method: Method = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
            msg = f"filters must be an int >= 1; got {filters!r}"
            raise ValueError(msg)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or filters % groups:
            msg = f"groups must be an int >= 1 that divides filters={filters}; got {groups!r}"
            raise ValueError(msg)
        padding = padding.lower() if isinstance(padding, str) else padding  # type: ignore[assignment]  # "SAME", as Keras
        if padding not in MODES:
            msg = f"padding must be one of {', '.join(map(repr, MODES))}; got {padding!r}"
            raise ValueError(msg)
        if boundary not in BOUNDARY_ALIASES:
            msg = f"boundary must be one of {', '.join(map(repr, BOUNDARY_ALIASES))}; got {boundary!r}"
            raise ValueError(msg)
        data_format = keras.config.image_data_format() if data_format is None else data_format
        if data_format not in ("channels_last", "channels_first"):
            msg = f"data_format must be 'channels_last' or 'channels_first'; got {data_format!r}"
            raise ValueError(msg)
        if not isinstance(use_bias, bool):
            msg = f"use_bias must be True or False; got {use_bias!r}"
            raise TypeError(msg)
        self.filters = filters
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.strides = _pair("strides", strides)
        self.dilation_rate = _pair("dilation_rate", dilation_rate)
        self.padding = padding
        self.data_format = data_format
        self.groups = groups
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.boundary = BOUNDARY_ALIASES[boundary]
        self.method = method
        self.input_spec = keras.layers.InputSpec(ndim=4)
        self.kernel: Any = None
        self.bias: Any = None

    # -- geometry -------------------------------------------------------------
    @property
    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def _spans(self) -> tuple[int, int]:
        (kh, kw), (dh, dw) = self.kernel_size, self.dilation_rate
        return (dh * (kh - 1) + 1, dw * (kw - 1) + 1)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        backend = keras.backend.backend()
        if backend not in BACKENDS:
            msg = (
                f"xcorr.keras.Conv2D runs on the Keras backends {', '.join(BACKENDS)}; this is {backend!r} "
                "(set KERAS_BACKEND before importing keras)"
            )
            raise RuntimeError(msg)
        channels = input_shape[self._channel_axis]
        if channels is None:
            msg = f"the input's channel axis ({self.data_format}) must be known; got shape {input_shape}"
            raise ValueError(msg)
        if channels % self.groups:
            msg = f"groups={self.groups} must divide the input's {channels} channels"
            raise ValueError(msg)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
            trainable=True,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer, trainable=True
            )
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={self._channel_axis: channels})

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        if self.data_format == "channels_last":
            n, h, w, _ = input_shape
        else:
            n, _, h, w = input_shape
        rows, cols = (
            _out_size(size, span, stride, self.padding)
            for size, span, stride in zip((h, w), self._spans(), self.strides)
        )
        if self.data_format == "channels_last":
            return (n, rows, cols, self.filters)
        return (n, self.filters, rows, cols)

    # -- the computation ------------------------------------------------------
    def call(self, inputs: Array) -> Array:
        ops = keras.ops
        w = ops.transpose(ops.convert_to_tensor(self.kernel), (3, 2, 0, 1))  # HWIO -> OIHW
        # Keras' "same" zero padding is lax's "SAME" (ceil(size / stride) outputs, the odd
        # element after the input), which corr2d_multi takes as padding=; with another
        # boundary it is corr2d's centred "same" mode.
        same_fill = self.padding == "same" and self.boundary == "fill"
        return corr2d_multi(
            ops.convert_to_tensor(inputs),
            w,
            bias=ops.convert_to_tensor(self.bias) if self.use_bias else None,
            mode="valid" if same_fill else self.padding,
            padding="SAME" if same_fill else None,
            boundary=self.boundary,
            stride=self.strides,
            dilation=self.dilation_rate,
            groups=self.groups,
            method=self.method,
            data_format=self.data_format,
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
            groups=self.groups,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            boundary=self.boundary,
            method=self.method,
        )
        return config
