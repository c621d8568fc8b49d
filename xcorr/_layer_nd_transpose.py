"""The framework-free core of the ``Conv1DTranspose`` and ``Conv3DTranspose`` layers.

They are to ``Conv1D`` and ``Conv3D`` what ``Conv2DTranspose`` is to
``Conv2D``: a kind of the forward layer (``xcorr.fit`` trains them), whose
forward pass is ``conv_transpose1d`` / ``conv_transpose3d`` plus bias and whose
parameters have ``torch.nn.ConvTranspose1d`` / ``ConvTranspose3d``'s layout
``(C_in, C_out // groups, *kernel_size)``. ``xcorr.Conv1DTranspose(...)``
builds the class of the chosen backend (``Adapter.layer_class``), as
``xcorr.Conv1D`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload

from . import _adapter
from ._layer_1d import ArrayNdLayer, Conv1D
from ._layer_3d import Conv3D
from ._layer_transpose_spec import Conv1DTransposeSpec, Conv3DTransposeSpec
from ._one_d import Single
from ._one_d_transpose import TransposePadding1D
from ._three_d import Triple
from ._three_d_transpose import TransposePadding3D
from ._typing import DataFormat, Dtype, Initializer

__all__ = ["ArrayConv1DTranspose", "ArrayConv3DTranspose", "Conv1DTranspose", "Conv3DTranspose"]

_Conv1DTransposeT = TypeVar("_Conv1DTransposeT", bound="Conv1DTranspose")
_Conv3DTransposeT = TypeVar("_Conv3DTransposeT", bound="Conv3DTranspose")


class _TransposeViews:
    """The views a transposed layer changes: no mode nor boundary of its own, and its output padding."""

    spec: Any

    @property
    def mode(self) -> str:
        return "valid"

    @property
    def boundary(self) -> str:
        return "fill"

    @property
    def padding(self) -> Any:
        """The crop of each end of the full transposed output, as numbers ("SAME"/"VALID" resolved)."""
        return self.spec.padding

    @property
    def output_padding(self) -> Any:
        """The samples added after the crop, at the end of each axis."""
        return self.spec.output_padding


class Conv1DTranspose(_TransposeViews, Conv1D):
    """A trainable 1-D transposed convolution (learned upsampling of signals) on any backend.

    ``Conv1DTranspose(kernel_size, /, *, in_channels, out_channels, stride=1,
    padding=0, output_padding=0, dilation=1, groups=1, bias=True,
    backend=None, dtype=None, data_format="channels_first", seed=0,
    weight_init=None, bias_init=None)``

    ``layer(x) = conv_transpose1d(x, weight, bias=bias, ...)``, numerically
    ``torch.nn.ConvTranspose1d`` with the same weights (its ``state_dict``
    loads into one and from one): input ``(N, C_in, L)`` or ``(C_in, L)``
    (``(N, L, C_in)`` channels-last), ``weight`` of shape ``(C_in, C_out //
    groups, l)`` in both data formats, ``bias`` of shape ``(C_out,)``. As
    ``Conv2DTranspose`` is a kind of ``Conv2D``, it is a kind of
    ``xcorr.Conv1D``: a ``torch.nn.Module`` on "torch", a jax pytree on
    "jax", elsewhere a plain object with ``weight``, ``bias`` and ``grad(x,
    g)`` (by ``conv_transpose1d_vjp``); ``xcorr.fit`` trains each.

    Parameters
    ----------
    kernel_size : int or (int,)
        Number of kernel taps ``l`` (positional, the only positional argument).
    in_channels : int
        Input channels ``C_in`` (required), the weight's first axis.
    out_channels : int
        Output channels ``C_out`` (required); ``groups`` must divide both counts.
    stride : int or (int,), default 1
        Upsampling factor: the stride of the forward correlation this layer
        transposes (``xcorr.conv_transpose1d``, torch's meaning).
    padding : int, (int, int), "SAME" or "VALID", default 0
        Samples cropped from each end of the full transposed output, as in
        ``nn.ConvTranspose1d`` (or ``(left, right)``); lax's and Keras'
        "SAME" (output ``L * stride``) and "VALID" (any case) are resolved to
        numbers here, so ``layer.padding`` shows what they mean for this kernel.
    output_padding : int or (int,), default 0
        Extra samples at the end, smaller than the stride or the dilation:
        which of the lengths a strided forward correlation maps to the same
        input length the output has.
    dilation : int or (int,), default 1
        Spacing between the taps of the kernel.
    groups : int, default 1
        Grouped transposed convolution: input group ``g`` feeds output group ``g`` only.
    bias : bool, default True
        Whether the layer adds a learnable bias of shape ``(out_channels,)``.
    backend : {"numpy", "array_api_strict", "torch", "jax", "dask", "cupy"}, optional
        Where the parameters live, as for ``xcorr.Conv1D`` (default:
        ``$XCORR_BACKEND``, else "numpy").
    dtype : str or dtype, default "float32"
        The parameters' dtype, one of the names or dtypes ``xcorr.Conv2D`` takes.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        Input and output ``(N, C, L)`` or ``(N, L, C)``; the weight keeps
        torch's layout in both.
    seed : int, default 0
        Seed of the initial parameters (``numpy.random.default_rng``, the
        same numbers on every backend).
    weight_init : str or callable, optional
        The weight's initializer, a name of ``xcorr.initializers`` or a
        callable ``(shape, dtype, rng) -> array``; the default
        ("torch_default") is ``nn.ConvTranspose1d``'s, uniform on
        ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` with ``fan_in = out_channels //
        groups * l`` (torch's fans of the transposed weight).
    bias_init : str or callable, optional
        The bias' initializer, drawn after the weight: "torch_default"
        (on the weight's fan-in), "normal", "zeros" or a callable.

    Raises
    ------
    TypeError, ValueError
        Bad hyper-parameters, naming the argument: a kernel size, stride or
        dilation that is not one int >= 1, a bad ``padding``, an
        ``output_padding`` not smaller than the stride or the dilation (or
        given with "SAME"/"VALID"), missing channel counts or ones ``groups``
        does not divide, an unknown backend, dtype or data format.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> up = xcorr.Conv1DTranspose(4, in_channels=3, out_channels=2, stride=2, padding=1, backend="numpy")
    >>> up.weight.shape, up.bias.shape
    ((3, 2, 4), (2,))
    >>> up(np.ones((8, 3, 16), dtype=np.float32)).shape
    (8, 2, 32)
    """

    spec: Conv1DTransposeSpec  # type: ignore[assignment]  # a Conv1D whose spec is a Conv1DTransposeSpec
    _spec_class: ClassVar[Any] = Conv1DTransposeSpec
    _public_name = "Conv1DTranspose"

    if TYPE_CHECKING:
        # What type checkers see (as for Conv1D); tests/test_typing.py checks
        # these parameters against constructor_signature(Conv1DTransposeSpec).
        @overload
        def __new__(
            cls,
            kernel_size: Single,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            stride: Single = 1,
            padding: TransposePadding1D = 0,
            output_padding: Single = 0,
            dilation: Single = 1,
            groups: int = 1,
            bias: bool = True,
            backend: Literal["torch"],
            dtype: Dtype | None = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> TorchConv1DTranspose: ...

        @overload
        def __new__(
            cls: type[_Conv1DTransposeT],
            kernel_size: Single,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            stride: Single = 1,
            padding: TransposePadding1D = 0,
            output_padding: Single = 0,
            dilation: Single = 1,
            groups: int = 1,
            bias: bool = True,
            backend: str | None = None,
            dtype: Dtype | None = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> _Conv1DTransposeT: ...

        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...  # (the overloads need one; the real one is NdLayer's)

        @property
        def padding(self) -> tuple[int, int]: ...
        @property
        def output_padding(self) -> int: ...


class Conv3DTranspose(_TransposeViews, Conv3D):
    """A trainable 3-D transposed convolution (learned upsampling of volumes) on any backend.

    ``Conv3DTranspose(kernel_size, /, *, in_channels, out_channels, stride=1,
    padding=0, output_padding=0, dilation=1, groups=1, bias=True,
    backend=None, dtype=None, data_format="channels_first", seed=0,
    weight_init=None, bias_init=None)``

    ``layer(x) = conv_transpose3d(x, weight, bias=bias, ...)``, numerically
    ``torch.nn.ConvTranspose3d`` with the same weights (its ``state_dict``
    loads into one and from one): input ``(N, C_in, D, H, W)`` or ``(C_in,
    D, H, W)`` (``(N, D, H, W, C_in)`` channels-last), ``weight`` of shape
    ``(C_in, C_out // groups, kd, kh, kw)`` in both data formats, ``bias`` of
    shape ``(C_out,)``. A kind of ``xcorr.Conv3D``, on the same backends: a
    ``torch.nn.Module`` on "torch", a jax pytree on "jax", elsewhere a plain
    object with ``weight``, ``bias`` and ``grad(x, g)`` (by
    ``conv_transpose3d_vjp``); ``xcorr.fit`` trains each.

    Parameters
    ----------
    kernel_size : int or (int, int, int)
        Depth, height and width of the kernel (positional, the only positional argument).
    in_channels : int
        Input channels ``C_in`` (required), the weight's first axis.
    out_channels : int
        Output channels ``C_out`` (required); ``groups`` must divide both counts.
    stride : int or (int, int, int), default 1
        Upsampling factor along depth, height and width: the stride of the
        forward correlation this layer transposes (torch's meaning).
    padding : int, 3 ints or (before, after) pairs, "SAME" or "VALID", default 0
        What is cropped from both ends of each axis of the full transposed
        output, as in ``nn.ConvTranspose3d`` (or a pair per axis); lax's and
        Keras' "SAME" and "VALID" (any case) are resolved to numbers here.
    output_padding : int or (int, int, int), default 0
        Extra planes, rows and columns at the end of each axis, each smaller
        than that axis' stride or dilation.
    dilation : int or (int, int, int), default 1
        Spacing between kernel taps along each axis.
    groups : int, default 1
        Grouped transposed convolution: input group ``g`` feeds output group ``g`` only.
    bias : bool, default True
        Whether the layer adds a learnable bias of shape ``(out_channels,)``.
    backend : {"numpy", "array_api_strict", "torch", "jax", "dask", "cupy"}, optional
        Where the parameters live, as for ``xcorr.Conv3D``.
    dtype : str or dtype, default "float32"
        The parameters' dtype, as for ``xcorr.Conv3D``.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        Input and output ``(N, C, D, H, W)`` or ``(N, D, H, W, C)``; the
        weight keeps torch's layout in both.
    seed : int, default 0
        Seed of the initial parameters, the same numbers on every backend.
    weight_init : str or callable, optional
        The weight's initializer (a name of ``xcorr.initializers`` or a
        callable); the default is ``nn.ConvTranspose3d``'s, on ``fan_in =
        out_channels // groups * kd * kh * kw``.
    bias_init : str or callable, optional
        The bias' initializer, drawn after the weight: "torch_default",
        "normal", "zeros" or a callable ``(shape, dtype, rng) -> array``.

    Raises
    ------
    TypeError, ValueError
        Bad hyper-parameters, naming the argument: a kernel size, stride or
        dilation that is not one or three ints >= 1, a bad ``padding``, an
        ``output_padding`` not smaller than its axis' stride or dilation,
        missing channel counts or ones ``groups`` does not divide, an unknown
        backend, dtype or data format.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> up = xcorr.Conv3DTranspose(2, in_channels=4, out_channels=2, stride=2, backend="numpy")
    >>> up.weight.shape
    (4, 2, 2, 2, 2)
    >>> up(np.ones((1, 4, 3, 4, 5), dtype=np.float32)).shape
    (1, 2, 6, 8, 10)
    """

    spec: Conv3DTransposeSpec  # type: ignore[assignment]  # a Conv3D whose spec is a Conv3DTransposeSpec
    _spec_class: ClassVar[Any] = Conv3DTransposeSpec
    _public_name = "Conv3DTranspose"

    if TYPE_CHECKING:
        # What type checkers see (as for Conv3D); tests/test_typing.py checks
        # these parameters against constructor_signature(Conv3DTransposeSpec).
        @overload
        def __new__(
            cls,
            kernel_size: Triple,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            stride: Triple = 1,
            padding: TransposePadding3D = 0,
            output_padding: Triple = 0,
            dilation: Triple = 1,
            groups: int = 1,
            bias: bool = True,
            backend: Literal["torch"],
            dtype: Dtype | None = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> TorchConv3DTranspose: ...

        @overload
        def __new__(
            cls: type[_Conv3DTransposeT],
            kernel_size: Triple,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            stride: Triple = 1,
            padding: TransposePadding3D = 0,
            output_padding: Triple = 0,
            dilation: Triple = 1,
            groups: int = 1,
            bias: bool = True,
            backend: str | None = None,
            dtype: Dtype | None = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> _Conv3DTransposeT: ...

        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...  # (the overloads need one; the real one is NdLayer's)

        @property
        def padding(self) -> tuple[tuple[int, int], ...]: ...
        @property
        def output_padding(self) -> tuple[int, int, int]: ...


class ArrayConv1DTranspose(ArrayNdLayer, Conv1DTranspose):
    """``Conv1DTranspose`` whose parameters are arrays of numpy, array-api-strict, dask or cupy.

    Train it with ``xcorr.fit`` (or ``layer.grad`` and your own update):
    gradients come from ``conv_transpose1d_vjp``.
    """


class ArrayConv3DTranspose(ArrayNdLayer, Conv3DTranspose):
    """``Conv3DTranspose`` whose parameters are arrays of numpy, array-api-strict, dask or cupy.

    Train it with ``xcorr.fit`` (or ``layer.grad`` and your own update):
    gradients come from ``conv_transpose3d_vjp``.
    """


if TYPE_CHECKING:
    # What a type checker sees of xcorr.Conv1DTranspose(..., backend="torch"): a torch.nn.Module.
    from ._layer_1d import TorchConv1D
    from ._layer_3d import TorchConv3D

    class TorchConv1DTranspose(Conv1DTranspose, TorchConv1D):
        pass

    class TorchConv3DTranspose(Conv3DTranspose, TorchConv3D):
        pass


_adapter.GENERIC_LAYERS.update(Conv1DTranspose=ArrayConv1DTranspose, Conv3DTranspose=ArrayConv3DTranspose)
