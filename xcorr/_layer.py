"""The framework-free core of the ``Conv2D`` layer.

Everything a framework does not need to know lives here (the einops recipe:
logic in a mixin, a few lines per framework): validation of the
hyper-parameters, the backend-independent initial parameters, and the
forward pass in terms of ``corr2d`` / ``corr2d_multi``. ``xcorr.Conv2D(...)``
builds the class of the chosen backend:

* "torch": ``xcorr.backends.torch.Conv2D``, a ``torch.nn.Module``;
* "jax": ``xcorr.backends.jax.Conv2D``, a pytree (arrays are leaves, the
  hyper-parameters are static);
* "numpy", "array_api_strict", "dask", "cupy": ``ArrayConv2D``, a plain
  object holding two arrays of that library.

All of them are instances of ``xcorr.Conv2D``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload

from . import _adapter, _registry
from ._habits import refuse_habits
from ._layer_spec import LayerSpec, TransposeSpec, _ConstructorSignature, _layer_class, resolve_backend
from ._padding import PaddingPairs
from ._typing import Array, Boundary, DataFormat, Dtype, Initializer, Method, Mode, Padding, Pair, TransposePadding

__all__ = ["ArrayConv2D", "ArrayConv2DTranspose", "Conv2D", "Conv2DTranspose", "LayerSpec", "TransposeSpec"]

_LayerT = TypeVar("_LayerT", bound="Conv2D")

class Conv2D:
    """A trainable 2-D convolutional layer (cross-correlation plus bias) on any backend.

    ``Conv2D(kernel_size, /, *, in_channels=None, out_channels=None,
    mode="valid", boundary="fill", stride=1, dilation=1, groups=1, bias=True,
    backend=None, dtype=None, seed=0, method="auto", padding=None, weight_init=None,
    bias_init=None, data_format="channels_first")``

    Without channels it is the seed notebook's layer: ``layer(x) =
    corr2d(x, weight) + bias`` for an input of shape ``(..., H, W)``, a
    ``weight`` of shape ``kernel_size`` and a scalar ``bias``. With channels
    it is a convolutional layer: input ``(N, C_in, H, W)`` or
    ``(C_in, H, W)``, ``weight`` of shape ``(C_out, C_in // groups, h, w)``,
    ``bias`` of shape ``(C_out,)``, numerically equal to
    ``torch.nn.Conv2d`` with the same weights and the same ``padding``
    (``padding_mode`` "zeros", "reflect", "replicate", "circular" are the
    boundaries "fill", "reflect", "edge", "wrap"), and to
    ``corr2d_multi(x, weight, ...) + bias`` in every mode, boundary and
    padding.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Height and width of the kernel (positional, the only positional
        argument).
    in_channels : int, optional
        Input channels ``C_in``. Give it with ``out_channels`` for a
        channel layer; give neither for the seed's single-plane layer.
    out_channels : int, optional
        Output channels ``C_out`` (Keras' ``filters``), with ``in_channels``.
    mode : {"valid", "same", "full"}, default "valid"
        Output size, as in ``xcorr.corr2d``: windows inside the input,
        centred and as large as the input, or every overlap.
    boundary : {"fill", "wrap", "symm", "reflect", "edge"}, default "fill"
        How the input is extended in "same" and "full" modes and by
        ``padding``, as in ``xcorr.corr2d`` (the fill value is 0). torch's
        ``padding_mode`` "zeros", "circular", "reflect", "replicate" are
        "fill", "wrap", "reflect", "edge" (the aliases are accepted too).
    stride : int or (int, int), default 1
        Step between output windows (``dense[..., ::sh, ::sw]``).
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    padding : int, (int, int), ((int, int), (int, int)), "same" or "valid", optional
        Explicit padding, as in ``xcorr.corr2d``, only with ``mode="valid"``:
        ``padding=1, boundary="reflect"`` is torch's ``padding=1,
        padding_mode="reflect"``; ``padding="same"`` is Keras' (``lax``'s
        "SAME", for every stride).
    groups : int, default 1
        Grouped correlation; must divide both channel counts.
    bias : bool, default True
        Whether the layer adds a learnable bias (``layer.bias`` is None
        otherwise).
    backend : {"numpy", "array_api_strict", "torch", "jax", "dask", "cupy"}, optional
        Where the parameters live. Default: the environment variable
        ``XCORR_BACKEND``, else "numpy". "torch" gives a :class:`torch.nn.Module`
        (``xcorr.backends.torch.Conv2D``), "jax" a pytree that :func:`jax.jit`,
        :func:`jax.grad` and :func:`jax.vmap` take directly
        (``xcorr.backends.jax.Conv2D``); the others a plain object with
        ``weight`` and ``bias`` arrays.
    dtype : str or dtype, default "float32"
        "float32", "float64", "float16" (torch, jax, numpy) or "bfloat16" (torch,
        jax), or one of those dtypes of the backend. Half-precision layers
        compute in float32 and round their outputs once (``xcorr.corr2d``).
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How the forward correlation is computed, as in ``xcorr.corr2d`` and
        ``xcorr.corr2d_multi`` (channel layers on torch and jax use the
        native GEMM convolution under "auto").
    seed : int, default 0
        Seed of the initial parameters, drawn by ``numpy.random.default_rng``
        in float64 and rounded to ``dtype``, so every backend starts from the
        same numbers. Without channels ``weight`` and ``bias`` are standard
        normal (the seed notebook's ``torch.randn``); with channels they are
        uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in =
        in_channels // groups * h * w`` (``torch.nn.Conv2d``'s default).
    weight_init : str or callable, optional
        How ``seed``'s generator draws the weight (see
        ``xcorr.initializers``): "torch_default" (the default of channel
        layers), "glorot_uniform"/"xavier_uniform", "glorot_normal" (Keras:
        truncated), "xavier_normal" (torch), "he_uniform"/"kaiming_uniform",
        "he_normal" (Keras: truncated), "kaiming_normal" (torch), "normal"
        (standard normal: the single-plane layer's default), "zeros". Or any
        callable ``(shape, dtype, rng) -> array`` (e.g.
        ``xcorr.initializers.normal(std=0.02)``), called with the float64
        dtype and the seeded ``numpy.random.Generator``. Fans are torch's
        (``xcorr.initializers.fans``).
    bias_init : str or callable, optional
        How the bias is drawn, after the weight: "torch_default" (the
        default of channel layers, on the weight's fan-in), "normal" (the
        single-plane layer's default), "zeros", or a callable as for
        ``weight_init``.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        Channel layers only: input and output ``(N, C, H, W)`` or ``(N, H,
        W, C)``. The weight keeps its ``(C_out, C_in // groups, h, w)``
        layout (torch's) in both.

    Raises
    ------
    TypeError, ValueError
        Bad hyper-parameters, naming the argument: a kernel size that is not
        one or two ints >= 1, channel counts not >= 1 or not divisible by
        ``groups``, only one of ``in_channels``/``out_channels``, an unknown
        mode, boundary, backend or dtype, a bad ``padding`` or one with a
        ``mode`` other than "valid".
    ImportError
        A backend whose library is not installed.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import xcorr
    >>> layer = xcorr.Conv2D((1, 2), backend="array_api_strict", dtype="float64")
    >>> layer.weight.shape, layer.bias.shape
    ((1, 2), ())
    >>> layer(xp.ones((6, 8))).shape
    (6, 7)
    >>> conv = xcorr.Conv2D(3, in_channels=3, out_channels=8, mode="same", backend="array_api_strict")
    >>> conv(xp.ones((4, 3, 32, 32))).shape, conv.weight.dtype
    ((4, 8, 32, 32), array_api_strict.float32)
    """

    spec: LayerSpec
    #: The kernel, an array of the backend: shape ``kernel_size``, or
    #: ``(out_channels, in_channels // groups, *kernel_size)`` with channels.
    weight: Array
    #: The bias (a scalar, or shape ``(out_channels,)``), or None with ``bias=False``.
    bias: Array | None
    _spec_class: ClassVar[Any] = LayerSpec
    _public_name = "Conv2D"

    __signature__ = _ConstructorSignature()

    if TYPE_CHECKING:
        # What type checkers see; at run time __new__ takes *args, **kwargs and
        # the backend's class validates them. tests/test_typing.py checks that
        # these parameters are those of constructor_signature().
        @overload
        def __new__(
            cls,
            kernel_size: Pair,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            mode: Mode = "valid",
            boundary: Boundary = "fill",
            stride: Pair = 1,
            dilation: Pair = 1,
            groups: int = 1,
            bias: bool = True,
            backend: Literal["torch"],
            dtype: Dtype | None = None,
            method: Method = "auto",
            padding: Padding = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> TorchConv2D: ...

        @overload
        def __new__(
            cls: type[_LayerT],
            kernel_size: Pair,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            mode: Mode = "valid",
            boundary: Boundary = "fill",
            stride: Pair = 1,
            dilation: Pair = 1,
            groups: int = 1,
            bias: bool = True,
            backend: str | None = None,
            dtype: Dtype | None = None,
            method: Method = "auto",
            padding: Padding = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> _LayerT: ...

        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...  # (the overloads need one; the real one is below)

        def __call__(self, x: Array, /) -> Array: ...

    else:

        def __new__(cls, *args, **kwargs):
            refuse_habits(cls._public_name, args, kwargs)
            if cls is Conv2D:
                cls = _layer_class(resolve_backend(kwargs.get("backend")))
            # Python then calls cls.__init__ with the same arguments.
            return object.__new__(cls)

    @classmethod
    def _configure(cls, backend: str, kernel_size, kwargs) -> tuple[LayerSpec, dict]:
        """Validate the arguments of a ``backend`` layer; return its spec and initial arrays."""
        kwargs = dict(kwargs)
        seed = kwargs.pop("seed", 0)
        weight_init = kwargs.pop("weight_init", None)
        bias_init = kwargs.pop("bias_init", None)
        if bias_init is not None and kwargs.get("bias", True) is False:
            msg = f"bias_init={bias_init!r} given with bias=False: the layer has no bias to initialise"
            raise ValueError(msg)
        requested = kwargs.pop("backend", None)
        if requested is not None and resolve_backend(requested) != backend:
            msg = f"backend={requested!r} given to the {backend} {cls._public_name} class"
            raise ValueError(msg)
        spec = cls._spec_class.parse(kernel_size, backend=backend, **kwargs)
        return spec, spec.arrays(seed, weight_init, bias_init)

    # -- read-only views of the hyper-parameters ----------------------------
    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.spec.kernel_size

    @property
    def in_channels(self) -> int | None:
        return self.spec.in_channels

    @property
    def out_channels(self) -> int | None:
        return self.spec.out_channels

    @property
    def mode(self) -> str:
        return self.spec.options.mode

    @property
    def boundary(self) -> str:
        return self.spec.options.boundary

    @property
    def padding(self) -> str | tuple[tuple[int, int], tuple[int, int]] | None:
        """None (the windows follow ``mode``), "SAME", "SAME_LOWER" or ``((top, bottom), (left, right))``."""
        return self.spec.options.padding

    @property
    def stride(self) -> tuple[int, int]:
        return self.spec.options.stride

    @property
    def dilation(self) -> tuple[int, int]:
        return self.spec.options.dilation

    @property
    def groups(self) -> int:
        return self.spec.groups

    @property
    def backend(self) -> str:
        return self.spec.backend

    @property
    def data_format(self) -> str:
        return self.spec.data_format


class ArrayConv2D(Conv2D):
    """``Conv2D`` whose parameters are arrays of numpy, array-api-strict, dask or cupy.

    Train it with ``xcorr.fit`` (or ``layer.grad`` and your own update):
    gradients come from the core VJP. Assigning new arrays to ``weight`` and
    ``bias`` is how an update is applied; arrays are never mutated.
    """

    def __init__(self, kernel_size, /, **kwargs):
        backend = resolve_backend(kwargs.get("backend"))
        cls = _layer_class(backend)
        if not issubclass(cls, ArrayConv2D):
            msg = f"use xcorr.Conv2D(..., backend={backend!r}) or {cls.__module__}.{cls.__name__}"
            raise ValueError(msg)
        self.spec, params = self._configure(backend, kernel_size, kwargs)
        self.weight = params["weight"]
        self.bias = params["bias"]

    def __call__(self, x):
        return self.spec.apply(self.weight, self.bias, x)

    def grad(self, x, g) -> dict:
        """Gradients of the parameters for input ``x`` and output gradient ``g``."""
        return self.spec.vjp(self.weight, self.bias, x, g)

    def __repr__(self) -> str:
        return f"Conv2D({self.spec.describe()})"


class Conv2DTranspose(Conv2D):
    """A trainable transposed convolution (learned upsampling) on any backend.

    ``Conv2DTranspose(kernel_size, /, *, in_channels, out_channels,
    stride=1, padding=0, output_padding=0, dilation=1, groups=1, bias=True,
    data_format="channels_first", backend=None, dtype=None, seed=0,
    weight_init=None, bias_init=None)``

    ``layer(x) = conv_transpose2d(x, weight, ...) + bias``, numerically
    ``torch.nn.ConvTranspose2d`` with the same weights: input ``(N, C_in,
    H, W)`` or ``(C_in, H, W)`` (``(N, H, W, C_in)`` channels-last),
    ``weight`` of shape ``(C_in, C_out // groups, h, w)`` (torch's layout,
    in both data formats), ``bias`` of shape ``(C_out,)``. Like Keras'
    ``Conv2DTranspose`` it is a kind of ``Conv2D`` (``xcorr.fit`` trains
    it); the backends are those of ``Conv2D``: a ``torch.nn.Module`` on
    "torch", a pytree on "jax", a plain object of two arrays elsewhere
    (trained with ``conv_transpose2d_vjp``).

    Parameters
    ----------
    kernel_size : int or (int, int)
        Height and width of the kernel (positional, the only positional
        argument).
    in_channels : int
        Input channels ``C_in`` (required); ``groups`` must divide it.
    out_channels : int
        Output channels ``C_out`` (required); ``groups`` must divide it.
    stride : int or (int, int), default 1
        Upsampling factor: the stride of the forward correlation this layer
        transposes (``xcorr.conv_transpose2d``, torch's meaning).
    padding : int, (int, int), ((int, int), (int, int)), "SAME" or "VALID", default 0
        Rows and columns cropped from the full transposed output, as in
        ``nn.ConvTranspose2d``; "SAME" and "VALID" are resolved to numbers
        here, so ``layer.padding`` shows what they mean for this kernel.
    output_padding : int or (int, int), default 0
        Extra rows and columns at the bottom and right (each smaller than
        the stride or the dilation), which pick one of the output sizes a
        strided forward correlation maps to the same input size.
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    groups : int, default 1
        Grouped transposed convolution; must divide both channel counts.
    bias : bool, default True
        Whether the layer adds a learnable bias of shape ``(out_channels,)``.
    backend : {"numpy", "array_api_strict", "torch", "jax", "dask", "cupy"}, optional
        As in ``xcorr.Conv2D``: "torch" gives a ``torch.nn.Module``, "jax"
        a pytree.
    dtype : str or dtype, default "float32"
        As in ``xcorr.Conv2D``.
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        Input and output ``(N, C, H, W)`` or ``(N, H, W, C)``; the weight
        keeps torch's layout in both.
    seed : int, default 0
        Seed of the initial parameters, as in ``xcorr.Conv2D``.
    weight_init : str or callable, optional
        As in ``xcorr.Conv2D``; the default ("torch_default") is
        ``nn.ConvTranspose2d``'s, whose fan-in is ``out_channels // groups
        * h * w`` (torch's fans of the transposed weight).
    bias_init : str or callable, optional
        As in ``xcorr.Conv2D`` ("torch_default", "normal", "zeros" or a
        callable).

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> up = xcorr.Conv2DTranspose(2, in_channels=4, out_channels=2, stride=2, backend="numpy")
    >>> up.weight.shape, up(np.ones((1, 4, 8, 8), dtype=np.float32)).shape
    ((4, 2, 2, 2), (1, 2, 16, 16))
    """

    spec: TransposeSpec  # type: ignore[assignment]  # a Conv2D whose spec is a TransposeSpec
    _spec_class = TransposeSpec
    _public_name = "Conv2DTranspose"

    if TYPE_CHECKING:
        # What type checkers see (as for Conv2D); tests/test_typing.py checks
        # these parameters against constructor_signature(TransposeSpec).
        @overload
        def __new__(
            cls,
            kernel_size: Pair,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            stride: Pair = 1,
            padding: TransposePadding = 0,
            output_padding: Pair = 0,
            dilation: Pair = 1,
            groups: int = 1,
            bias: bool = True,
            backend: Literal["torch"],
            dtype: Dtype | None = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> TorchConv2DTranspose: ...

        @overload
        def __new__(
            cls: type[_LayerT],
            kernel_size: Pair,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            stride: Pair = 1,
            padding: TransposePadding = 0,
            output_padding: Pair = 0,
            dilation: Pair = 1,
            groups: int = 1,
            bias: bool = True,
            backend: str | None = None,
            dtype: Dtype | None = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> _LayerT: ...

        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...  # (the overloads need one; the real one is below)

    else:

        def __new__(cls, *args, **kwargs):
            refuse_habits(cls._public_name, args, kwargs)
            if cls is Conv2DTranspose:
                cls = _registry.adapter_named(resolve_backend(kwargs.get("backend"))).transpose_layer_class()
            return object.__new__(cls)

    @property
    def mode(self) -> str:
        return "valid"

    @property
    def boundary(self) -> str:
        return "fill"

    @property
    def padding(self) -> PaddingPairs:
        return self.spec.padding

    @property
    def output_padding(self) -> tuple[int, int]:
        return self.spec.output_padding


class ArrayConv2DTranspose(Conv2DTranspose, ArrayConv2D):
    """``Conv2DTranspose`` whose parameters are arrays of numpy, array-api-strict, dask or cupy."""

    def __init__(self, kernel_size, /, **kwargs):
        backend = resolve_backend(kwargs.get("backend"))
        cls = _registry.adapter_named(backend).transpose_layer_class()
        if not issubclass(cls, ArrayConv2DTranspose):
            msg = f"use xcorr.Conv2DTranspose(..., backend={backend!r}) or {cls.__module__}.{cls.__name__}"
            raise ValueError(msg)
        self.spec, params = self._configure(backend, kernel_size, kwargs)
        self.weight = params["weight"]
        self.bias = params["bias"]

    def __repr__(self) -> str:
        return f"Conv2DTranspose({self.spec.describe()})"


if TYPE_CHECKING:
    # What a type checker sees of xcorr.Conv2D(..., backend="torch"): the torch.nn.Module
    # that xcorr.backends.torch.Conv2D is at run time (``.parameters()``, ``.to()``, a
    # torch.optim optimizer, nn.Sequential). Without torch installed these are Conv2D.
    import torch

    class TorchConv2D(Conv2D, torch.nn.Module):
        weight: torch.nn.Parameter
        bias: torch.nn.Parameter | None

        def __call__(self, x: torch.Tensor, /) -> torch.Tensor: ...
        def forward(self, x: torch.Tensor) -> torch.Tensor: ...

    class TorchConv2DTranspose(Conv2DTranspose, TorchConv2D):
        pass


# The generic layers serve every adapter that keeps Adapter.layer_class's default.
_adapter.GENERIC_LAYERS.update(Conv2D=ArrayConv2D, Conv2DTranspose=ArrayConv2DTranspose)
