"""The framework-free core of the ``Conv1D`` layer: its classes (its hyper-parameters, ``Conv1DSpec``,
are in ``_layer_nd_spec``).

A 1-D layer is ``corr1d_multi(x, weight, bias=bias, ...)``, whose VJP is
``corr1d_multi_vjp`` (both thin fronts over the 2-D functions on one-row
signals); the parameters have ``torch.nn.Conv1d``'s layout ``(C_out, C_in //
groups, l)``. ``xcorr.Conv1D(...)`` builds the class of the chosen backend, as
``xcorr.Conv2D`` does: a ``torch.nn.Module`` on "torch", a pytree on "jax",
``ArrayConv1D`` (two arrays in a plain object) elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, overload

from . import _adapter, _registry
from ._habits import refuse_habits
from ._layer import Conv2D
from ._layer_nd_spec import Conv1DSpec
from ._layer_spec import _ConstructorSignature, resolve_backend
from ._one_d import Padding1D, Single
from ._typing import Array, Boundary, DataFormat, Dtype, Initializer, Method, Mode

__all__ = ["ArrayConv1D", "ArrayNdLayer", "Conv1D", "NdLayer"]

_Conv1DT = TypeVar("_Conv1DT", bound="Conv1D")


class NdLayer:
    """What ``Conv1D`` and ``Conv3D`` share: the backend's class chosen by ``__new__``, the arguments'
    validation (``Conv2D``'s), and read-only views of the spec's hyper-parameters."""

    spec: Any
    #: The kernel, shape ``(out_channels, in_channels // groups, *kernel_size)``.
    weight: Array
    #: The bias, shape ``(out_channels,)``, or None with ``bias=False``.
    bias: Array | None
    _spec_class: ClassVar[Any]
    _public_name: ClassVar[str]

    __signature__ = _ConstructorSignature()

    if not TYPE_CHECKING:

        def __new__(cls, *args, **kwargs):
            refuse_habits(cls._public_name, args, kwargs)
            if "_public_name" in cls.__dict__:  # xcorr.Conv1D(...): the backend's class
                cls = _registry.adapter_named(resolve_backend(kwargs.get("backend"))).layer_class(cls._public_name)
            return object.__new__(cls)

    # Conv2D's: validate the arguments of a backend's layer, return its spec and initial arrays.
    _configure: ClassVar[Any] = classmethod(Conv2D._configure.__func__)  # type: ignore[attr-defined]

    # -- read-only views of the hyper-parameters ----------------------------
    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self.spec.kernel_size

    @property
    def in_channels(self) -> int:
        return self.spec.in_channels

    @property
    def out_channels(self) -> int:
        return self.spec.out_channels

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def boundary(self) -> str:
        return self.spec.boundary

    @property
    def padding(self) -> Any:
        """None (the windows follow ``mode``), "SAME", "SAME_LOWER" or the padding of each axis."""
        return self.spec.padding

    @property
    def stride(self) -> Any:
        return self.spec.stride

    @property
    def dilation(self) -> Any:
        return self.spec.dilation

    @property
    def groups(self) -> int:
        return self.spec.groups

    @property
    def backend(self) -> str:
        return self.spec.backend

    @property
    def data_format(self) -> str:
        return self.spec.data_format


class ArrayNdLayer(NdLayer):
    """A ``Conv1D`` or ``Conv3D`` whose parameters are arrays of numpy, array-api-strict, dask or cupy."""

    def __init__(self, kernel_size, /, **kwargs):
        backend = resolve_backend(kwargs.get("backend"))
        cls = _registry.adapter_named(backend).layer_class(self._public_name)
        if not issubclass(cls, ArrayNdLayer):
            msg = f"use xcorr.{self._public_name}(..., backend={backend!r}) or {cls.__module__}.{cls.__name__}"
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
        return f"{self._public_name}({self.spec.describe()})"


class Conv1D(NdLayer):
    """A trainable 1-D convolutional layer (multi-channel cross-correlation plus bias) on any backend.

    ``Conv1D(kernel_size, /, *, in_channels, out_channels, mode="valid",
    boundary="fill", stride=1, dilation=1, groups=1, bias=True, backend=None,
    dtype=None, method="auto", padding=None, data_format="channels_first",
    seed=0, weight_init=None, bias_init=None)``

    ``layer(x) = corr1d_multi(x, weight, bias=bias, ...)`` for an input
    ``(N, C_in, L)`` or ``(C_in, L)`` (``(N, L, C_in)`` channels-last),
    ``weight`` of shape ``(C_out, C_in // groups, l)`` and ``bias`` of shape
    ``(C_out,)``: numerically ``torch.nn.Conv1d`` with the same weights and
    ``padding`` (its ``state_dict`` loads into one and from one), extended to
    every mode and boundary of ``xcorr.corr1d``. The backends are those of
    ``xcorr.Conv2D``: a ``torch.nn.Module`` on "torch", a jax pytree on "jax"
    (``jax.jit`` and ``jax.grad`` take it), elsewhere a plain object with
    ``weight``, ``bias`` and ``grad(x, g)`` (``xcorr.fit`` trains all of them).

    Parameters
    ----------
    kernel_size : int or (int,)
        Number of kernel taps ``l`` (positional, the only positional argument).
    in_channels : int
        Input channels ``C_in`` (required); ``groups`` must divide it.
    out_channels : int
        Output channels ``C_out`` (Keras' ``filters``, required).
    mode : {"valid", "same", "full"}, default "valid"
        Output length, as in ``xcorr.corr1d``: windows inside the input,
        centred and as long as the input, or every overlap.
    boundary : {"fill", "wrap", "symm", "reflect", "edge"}, default "fill"
        How the input is extended in "same" and "full" modes and by
        ``padding`` (the fill value is 0); torch's ``padding_mode`` names
        "zeros", "circular", "reflect", "replicate" are accepted too.
    stride : int or (int,), default 1
        Step between output windows (``dense[..., ::s]``).
    dilation : int or (int,), default 1
        Spacing between kernel taps.
    groups : int, default 1
        Grouped correlation; must divide both channel counts.
    bias : bool, default True
        Whether the layer adds a learnable bias (``layer.bias`` is None otherwise).
    backend : {"numpy", "array_api_strict", "torch", "jax", "dask", "cupy"}, optional
        Where the parameters live, as for ``xcorr.Conv2D`` (default:
        ``$XCORR_BACKEND``, else "numpy").
    dtype : str or dtype, default "float32"
        The parameters' dtype, one of the names or dtypes ``xcorr.Conv2D`` takes.
    method : {"auto", "direct", "fft", "native"}, default "auto"
        How the forward correlation is computed, as in ``xcorr.corr1d_multi``.
    padding : int, (int, int), "same", "valid" or "causal", optional
        Explicit padding, only with ``mode="valid"``: ``n`` samples at both
        ends or ``(left, right)`` (torch's ``padding``, extended with
        ``boundary``); "same" is Keras' and lax's ("SAME", for every stride),
        "valid" none, and "causal" Keras' causal padding, ``dilation *
        (kernel_size - 1)`` samples on the left only, so that output ``i``
        sees no input after ``i``. Names in any case ("SAME_LOWER" too).
    data_format : {"channels_first", "channels_last"}, default "channels_first"
        Input and output ``(N, C, L)`` or ``(N, L, C)``; the weight keeps
        torch's layout in both.
    seed : int, default 0
        Seed of the initial parameters (``numpy.random.default_rng``, the
        same numbers on every backend): by default uniform on
        ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in = in_channels //
        groups * l``, the distribution of ``torch.nn.Conv1d``'s initialisation.
    weight_init : str or callable, optional
        The weight's initializer, a name of ``xcorr.initializers``
        ("torch_default", "glorot_uniform", "he_normal", ...) or a callable
        ``(shape, dtype, rng) -> array``.
    bias_init : str or callable, optional
        The bias' initializer, drawn after the weight: "torch_default",
        "normal", "zeros" or a callable.

    Raises
    ------
    TypeError, ValueError
        Bad hyper-parameters, naming the argument: a kernel size that is not
        one int >= 1, missing channel counts or ones ``groups`` does not
        divide, an unknown mode, boundary, padding, backend or dtype, or a
        ``padding`` with a ``mode`` other than "valid".

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> layer = xcorr.Conv1D(3, in_channels=2, out_channels=4, padding="causal", backend="numpy")
    >>> layer.weight.shape, layer.bias.shape
    ((4, 2, 3), (4,))
    >>> layer(np.ones((8, 2, 16), dtype=np.float32)).shape
    (8, 4, 16)
    """

    spec: Conv1DSpec
    _spec_class: ClassVar[Any] = Conv1DSpec
    _public_name = "Conv1D"

    if TYPE_CHECKING:
        # What type checkers see (as for Conv2D); tests/test_typing.py checks
        # these parameters against constructor_signature(Conv1DSpec).
        @overload
        def __new__(
            cls,
            kernel_size: Single,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            mode: Mode = "valid",
            boundary: Boundary = "fill",
            stride: Single = 1,
            dilation: Single = 1,
            groups: int = 1,
            bias: bool = True,
            backend: Literal["torch"],
            dtype: Dtype | None = None,
            method: Method = "auto",
            padding: Padding1D = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> TorchConv1D: ...

        @overload
        def __new__(
            cls: type[_Conv1DT],
            kernel_size: Single,
            /,
            *,
            in_channels: int | None = None,
            out_channels: int | None = None,
            mode: Mode = "valid",
            boundary: Boundary = "fill",
            stride: Single = 1,
            dilation: Single = 1,
            groups: int = 1,
            bias: bool = True,
            backend: str | None = None,
            dtype: Dtype | None = None,
            method: Method = "auto",
            padding: Padding1D = None,
            data_format: DataFormat = "channels_first",
            seed: int = 0,
            weight_init: Initializer | None = None,
            bias_init: Initializer | None = None,
        ) -> _Conv1DT: ...

        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...  # (the overloads need one; the real one is NdLayer's)

        def __call__(self, x: Array, /) -> Array: ...

        @property
        def kernel_size(self) -> tuple[int]: ...
        @property
        def padding(self) -> str | tuple[int, int] | None: ...
        @property
        def stride(self) -> int: ...
        @property
        def dilation(self) -> int: ...


class ArrayConv1D(ArrayNdLayer, Conv1D):
    """``Conv1D`` whose parameters are arrays of numpy, array-api-strict, dask or cupy.

    Train it with ``xcorr.fit`` (or ``layer.grad`` and your own update):
    gradients come from ``corr1d_multi_vjp``.
    """


if TYPE_CHECKING:
    # What a type checker sees of xcorr.Conv1D(..., backend="torch"): a torch.nn.Module.
    import torch

    class TorchConv1D(Conv1D, torch.nn.Module):
        weight: torch.nn.Parameter
        bias: torch.nn.Parameter | None

        def __call__(self, x: torch.Tensor, /) -> torch.Tensor: ...
        def forward(self, x: torch.Tensor) -> torch.Tensor: ...


_adapter.GENERIC_LAYERS.update(Conv1D=ArrayConv1D)
