"""A layer's hyper-parameters: their validation, the backend's name, initial parameters, signature.

``LayerSpec`` (``Conv2D``) and ``TransposeSpec`` (``Conv2DTranspose``) are
frozen and hashable (jax keeps them static), hold the parsed options and
compute the layer's forward pass and gradients in terms of ``corr2d`` /
``corr2d_multi`` and the transposed functions. The layer classes
(``xcorr._layer``) hold a spec and their parameters.
"""

from __future__ import annotations

import functools
import inspect
import operator
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from . import _layout, _registry, _transpose, _transpose_plan, initializers
from ._call import check_multi, parse_options, validate, validate_transpose
from ._correlate import _correlate
from ._multi import apply_multi, corr2d_multi_last, multi_vjp
from ._options import Options, check_array, check_arrays, plan
from ._padding import PaddingPairs, parse_int, parse_transpose_padding, resolve_transpose_padding
from ._typing import Boundary, DataFormat, Dtype, Initializer, Method, Mode, Padding, Pair, TransposePadding
from ._vjp import vjp

__all__ = ["LayerSpec", "NdLayerSpec", "TransposeSpec", "constructor_signature", "resolve_backend"]

DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")


def resolve_backend(backend: object) -> str:
    """The backend name: ``backend``, else ``$XCORR_BACKEND``, else "numpy".

    Names are those of the adapter registry (``xcorr._registry.LIBRARIES``) and
    any registered with ``xcorr.register_adapter``; the library is imported
    here, with an install hint when it is missing.
    """
    source = "backend"
    if backend is None:
        backend = os.environ.get("XCORR_BACKEND") or "numpy"
        source = "the environment variable XCORR_BACKEND"
    names = _registry.known_names()
    if isinstance(backend, str):
        backend = _registry.resolve_name(backend)
    if not isinstance(backend, str) or backend not in names:
        msg = f"{source} must be one of {', '.join(map(repr, names))}; got {backend!r}"
        raise ValueError(msg)
    try:
        _registry.import_library(backend)
    except _registry.MissingLibrary as err:
        msg = f"backend={backend!r} needs {err.module}, which is not installed ({err.pip or f'install {backend}'}): {err.cause}"
        raise ImportError(msg) from err.cause
    return backend


def namespace(backend: str):
    """The array-API namespace whose arrays hold the parameters of ``backend``."""
    return _registry.adapter_named(backend).namespace()


def parse_dtype(dtype: object, backend: str) -> str:
    if dtype is None:
        return "float32"
    xp = namespace(backend)
    names = [name for name in DTYPES if hasattr(xp, name)]  # float16/bfloat16 where the library has them
    if isinstance(dtype, str):
        if dtype in names:
            return dtype
    else:
        for name in names:
            try:
                if dtype == getattr(xp, name) or np.dtype(dtype) == name:  # type: ignore[call-overload]
                    return name
            except TypeError:
                continue
    msg = f"dtype must be one of {', '.join(map(repr, names))} or one of those dtypes of {backend}; got {dtype!r}"
    raise ValueError(msg)


def parse_kernel_size(kernel_size: object) -> tuple[int, int]:
    msg = f"kernel_size must be an int or a pair of ints, each >= 1; got {kernel_size!r}"
    items = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size, kernel_size)
    if len(items) != 2:
        raise ValueError(msg)
    if any(isinstance(n, bool) for n in items):
        raise TypeError(msg)
    try:
        pair = (operator.index(items[0]), operator.index(items[1]))
    except TypeError:
        raise TypeError(msg) from None
    if min(pair) < 1:
        raise ValueError(msg)
    return pair


def parse_layer_arguments(layer, in_channels, out_channels, groups, bias, backend, dtype, data_format):
    """A layer's checks of its channels, groups, bias, data_format, backend and dtype, in that order.

    ``layer`` names a layer that needs channels (``"Conv1D"``: its message
    names it); None is ``Conv2D``, whose channels are optional (both or
    neither). Returns ``(in_channels, out_channels, groups, backend,
    dtype)``, parsed.
    """
    groups = parse_int("groups", groups)
    if layer is not None and (in_channels is None or out_channels is None):
        msg = (
            f"{layer} needs in_channels and out_channels; got "
            f"in_channels={in_channels!r}, out_channels={out_channels!r}"
        )
        raise TypeError(msg)
    if (in_channels is None) != (out_channels is None):
        msg = (
            "in_channels and out_channels must be given together (a channel layer) or "
            f"not at all (the seed's single-plane layer); got in_channels={in_channels!r}, "
            f"out_channels={out_channels!r}"
        )
        raise ValueError(msg)
    if in_channels is not None:
        in_channels = parse_int("in_channels", in_channels)
        out_channels = parse_int("out_channels", out_channels)
        if in_channels % groups or out_channels % groups:
            msg = f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}"
            raise ValueError(msg)
    elif groups != 1:
        msg = f"groups={groups} needs in_channels and out_channels"
        raise ValueError(msg)
    if not isinstance(bias, bool):
        msg = f"bias must be True or False; got {bias!r}"
        raise TypeError(msg)
    if _layout.parse_data_format(data_format) and in_channels is None:
        msg = 'data_format="channels_last" needs in_channels and out_channels (a channel layer)'
        raise ValueError(msg)
    backend = resolve_backend(backend)
    dtype = parse_dtype(dtype, backend)
    _registry.adapter_named(backend).check_layer_dtype(dtype)
    return in_channels, out_channels, groups, backend, dtype


@dataclass(frozen=True)
class LayerSpec:
    """The validated hyper-parameters of one layer (hashable: jax-static)."""

    kernel_size: tuple[int, int]
    in_channels: int | None
    out_channels: int | None
    options: Options
    groups: int
    bias: bool
    dtype: str
    backend: str
    data_format: str = "channels_first"
    call_options: dict[str, Any] = field(init=False, repr=False, compare=False)

    @classmethod
    def parse(
        cls,
        kernel_size: Pair,
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
    ) -> LayerSpec:
        kernel = parse_kernel_size(kernel_size)
        options = parse_options(locals())  # mode, boundary, stride, dilation, method, padding
        in_channels, out_channels, groups, backend, dtype = parse_layer_arguments(
            None, in_channels, out_channels, groups, bias, backend, dtype, data_format
        )
        return cls(
            kernel, in_channels, out_channels, options, groups, bias, dtype, backend, data_format
        )

    @property
    def channels(self) -> bool:
        return self.in_channels is not None

    def __post_init__(self) -> None:
        # The keyword arguments of the public call a layer's forward makes
        # (corr2d or corr2d_multi), built once: forward runs on every step and
        # under torch.compile's tracer, which cannot enter a cached_property's lock.
        o = self.options
        options: dict[str, Any] = dict(
            mode=o.mode, boundary=o.boundary, stride=o.stride, dilation=o.dilation, method=o.method, padding=o.padding
        )
        if self.channels:
            options.update(groups=self.groups, data_format=self.data_format)
        object.__setattr__(self, "call_options", options)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.in_channels is None or self.out_channels is None:  # not self.channels
            return self.kernel_size
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return () if self.out_channels is None else (self.out_channels,)

    def initial(self, seed: int, weight_init=None, bias_init=None) -> dict[str, np.ndarray | None]:
        """Initial parameters as NumPy arrays of ``dtype``, the same for every backend.

        A ``numpy.random.default_rng(seed)`` draws the weight, then the bias,
        in float64, rounded to ``dtype`` afterwards, with the initializers
        ``weight_init`` and ``bias_init`` (``xcorr.initializers``: a name or
        a callable ``(shape, dtype, rng) -> array``). By default, without
        channels both are standard normal, as in the seed notebook
        (``torch.randn``); with channels both are uniform on
        ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in = in_channels //
        groups * h * w``, the distribution of ``torch.nn.Conv2d``'s default
        initialisation ("torch_default").
        """
        return initial_parameters(self, seed, weight_init, bias_init)

    def arrays(self, seed: int, weight_init=None, bias_init=None) -> dict:
        """``initial(seed, ...)`` as arrays of the backend (on its default device)."""
        xp = namespace(self.backend)
        return {
            name: None if value is None else xp.asarray(value, dtype=getattr(xp, self.dtype))
            for name, value in self.initial(seed, weight_init, bias_init).items()
        }

    # -- the computation ----------------------------------------------------
    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    def apply(self, weight, bias, x):
        """The forward pass: ``corr2d(x, weight) + bias`` or its channel form."""
        if not hasattr(x, "shape"):
            check_array("x", x)  # a Python list: the TypeError naming x, not an AttributeError below
        if self.channels_last:
            y = corr2d_multi_last(x, weight, validate(x, weight, self.options, self.groups, channels_last=True))
            return y if bias is None else y + bias
        if self.channels:
            return apply_multi(x, weight, self.options, self.groups, bias)
        y = _correlate(x, weight, self.options)
        return y if bias is None else y + bias

    def output_shape(self, x, weight) -> tuple[int, ...]:
        """Shape of ``apply(weight, bias, x)``, from the shapes alone (checks them too)."""
        if self.channels_last:
            xp = _layout.check_last(x, weight, channels=self.in_channels)
            _, geometry = check_multi(_layout.to_first(xp, x), weight, self.options, self.groups)
            return (*x.shape[:-3], geometry.rows.count, geometry.cols.count, self.out_channels)
        if self.channels:
            _, geometry = check_multi(x, weight, self.options, self.groups)
            return (*x.shape[:-3], self.out_channels, geometry.rows.count, geometry.cols.count)
        check_arrays(x, weight)
        return plan(x.shape, weight.shape, self.options).out_shape

    def vjp(self, weight, bias, x, g):
        """Gradients ``{"weight": ..., "bias": ...}`` of ``apply`` at output gradient ``g``."""
        xp = check_arrays(x, weight)
        if self.channels_last:
            xf, gf = _layout.to_first(xp, x), _layout.to_first(xp, g)
            _, gw = multi_vjp(xp, xf, weight, gf, self.options, self.groups, need_x=False)
            axes = tuple(range(g.ndim - 1))
        elif self.channels:
            _, gw = multi_vjp(xp, x, weight, g, self.options, self.groups, need_x=False)
            axes = tuple(i for i in range(g.ndim) if i != g.ndim - 3)
        else:
            geometry = plan(x.shape, weight.shape, self.options)
            _, gw = vjp(xp, x, weight, g, self.options, geometry, need_x=False)
            axes = None
        gb = None if bias is None else xp.astype(xp.sum(g, axis=axes), bias.dtype)
        return {"weight": gw, "bias": gb}

    def describe(self, dtype: str | None = None) -> str:
        parts = [f"{self.kernel_size}"]
        if self.channels:
            parts.append(f"in_channels={self.in_channels}, out_channels={self.out_channels}")
        o = self.options
        if o.padding is None:
            parts.append(f"mode={o.mode!r}, boundary={o.boundary!r}")
        else:
            parts.append(f"padding={o.padding!r}, boundary={o.boundary!r}")
        if o.stride != (1, 1):
            parts.append(f"stride={o.stride}")
        if o.dilation != (1, 1):
            parts.append(f"dilation={o.dilation}")
        if o.method != "auto":
            parts.append(f"method={o.method!r}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.channels_last:
            parts.append('data_format="channels_last"')
        parts.append(f"backend={self.backend!r}, dtype={dtype or self.dtype!r}")
        return ", ".join(parts)


class NdLayerSpec:
    """What the specs of the 1-D and 3-D layers share, forward (``NdSpec``) and transposed
    (``NdTransposeSpec``): the spatial axes, layout, bias, initial parameters, and the forward pass
    and the parameters' gradients by each dimension's public ``function`` and ``function_vjp``."""

    kernel_size: tuple[int, ...]
    data_format: str
    dtype: str
    backend: str
    call_options: dict[str, Any]
    out_channels: int

    channels = True
    #: The public function of the forward pass and its VJP (set by each dimension's spec).
    function: ClassVar[Any]
    function_vjp: ClassVar[Any]

    @property
    def spatial(self) -> int:
        """The number of spatial axes (1 or 3)."""
        return len(self.kernel_size)

    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def initial(self, seed: int, weight_init=None, bias_init=None) -> dict[str, np.ndarray | None]:
        """As ``LayerSpec.initial``; torch's default draws on the fan-in of ``weight_shape``."""
        return initial_parameters(self, seed, weight_init, bias_init)

    arrays = LayerSpec.arrays

    def apply(self, weight, bias, x):
        """The forward pass: ``function(x, weight, bias=bias, ...)``."""
        if not hasattr(x, "shape"):
            check_array("x", x)
        return self.function(x, weight, bias=bias, **self.call_options)

    def vjp(self, weight, bias, x, g):
        """Gradients ``{"weight": ..., "bias": ...}`` of ``apply`` at output gradient ``g``."""
        xp = check_arrays(x, weight)
        _, gw = self.function_vjp(x, weight, g, **self.call_options)
        channel = g.ndim - 1 if self.channels_last else g.ndim - 1 - self.spatial
        axes = tuple(i for i in range(g.ndim) if i != channel)
        gb = None if bias is None else xp.astype(xp.sum(g, axis=axes), bias.dtype)
        return {"weight": gw, "bias": gb}


def initial_parameters(spec, seed, weight_init, bias_init) -> dict[str, np.ndarray | None]:
    """``spec.initial``: the seeded draw of a layer's weight, then its bias (see ``LayerSpec.initial``)."""
    if isinstance(seed, bool):
        msg = f"seed must be an int; got {seed!r}"
        raise TypeError(msg)
    try:
        seed = operator.index(seed)
    except TypeError:
        msg = f"seed must be an int; got {seed!r}"
        raise TypeError(msg) from None
    if seed < 0:
        msg = f"seed must be a non-negative int (numpy.random.default_rng's seeds); got {seed!r}"
        raise ValueError(msg)
    default = initializers.DEFAULT if spec.channels else "normal"
    weight_init = initializers.resolve("weight_init", default if weight_init is None else weight_init, spec.weight_shape)
    bias_init = initializers.resolve("bias_init", default if bias_init is None else bias_init, spec.weight_shape)
    rng = np.random.default_rng(seed)
    # NumPy has no bfloat16: float32 here, rounded by the backend (``LayerSpec.arrays``).
    dtype = "float32" if spec.dtype == "bfloat16" else spec.dtype
    weight = initializers.draw("weight_init", weight_init, spec.weight_shape, dtype, rng)
    if not spec.bias:
        return {"weight": weight, "bias": None}
    bias = initializers.draw("bias_init", bias_init, spec.bias_shape, dtype, rng)
    return {"weight": weight, "bias": bias}


def _layer_class(backend: str) -> type:
    return _registry.adapter_named(backend).layer_class()


@functools.cache
def constructor_signature(spec_class: Any = None) -> inspect.Signature:
    """The parameters of ``Conv2D(...)`` (or of the layer whose spec is ``spec_class``).

    Those ``spec_class.parse`` validates, then ``seed``, ``weight_init`` and
    ``bias_init``. ``Conv2D.__new__`` takes ``*args, **kwargs`` (it picks
    the backend's class, whose ``__init__`` passes them on to the spec's
    ``parse``), so ``inspect.signature`` and ``help`` read this instead.
    """
    parse_method = (spec_class or LayerSpec).parse
    try:
        parse = inspect.signature(parse_method, eval_str=True)
    except NameError:  # an annotation that names a type only a type checker imports
        parse = inspect.signature(parse_method)
    parameters = [
        p.replace(kind=inspect.Parameter.POSITIONAL_ONLY) if p.name == "kernel_size" else p
        for p in parse.parameters.values()
    ]
    keyword = inspect.Parameter.KEYWORD_ONLY
    extra = [
        inspect.Parameter("seed", keyword, default=0, annotation=int),
        inspect.Parameter("weight_init", keyword, default=None, annotation=Initializer | None),
        inspect.Parameter("bias_init", keyword, default=None, annotation=Initializer | None),
    ]
    return inspect.Signature([*parameters, *extra])


class _ConstructorSignature:
    """A layer class's ``__signature__``: its constructor's parameters on the class, nothing on an instance.

    A layer instance is called as ``layer(x)``; its signature stays that of
    its ``__call__`` (or torch's ``forward``).
    """

    def __get__(self, instance: object, owner: type | None = None) -> inspect.Signature:
        if instance is not None:
            raise AttributeError("__signature__")
        return constructor_signature(getattr(owner, "_spec_class", None))


# -- transposed convolution ----------------------------------------------------------


@dataclass(frozen=True)
class TransposeSpec:
    """The validated hyper-parameters of one ``Conv2DTranspose`` (hashable: jax-static)."""

    kernel_size: tuple[int, int]
    in_channels: int
    out_channels: int
    options: Options  # the forward correlation's stride and dilation (valid, zero fill)
    padding: PaddingPairs
    output_padding: tuple[int, int]
    groups: int
    bias: bool
    dtype: str
    backend: str
    data_format: str = "channels_first"

    channels = True

    @classmethod
    def parse(
        cls,
        kernel_size: Pair,
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
    ) -> TransposeSpec:
        kernel = parse_kernel_size(kernel_size)
        options = parse_options({"stride": stride, "dilation": dilation})
        # "SAME"/"VALID" become numbers here: the kernel size is known.
        padding, output_padding = resolve_transpose_padding(
            parse_transpose_padding(padding), output_padding, kernel, options.stride, options.dilation
        )
        in_channels, out_channels, groups, backend, dtype = parse_layer_arguments(
            "Conv2DTranspose", in_channels, out_channels, groups, bias, backend, dtype, data_format
        )
        return cls(
            kernel, in_channels, out_channels, options, padding, output_padding, groups, bias, dtype, backend,
            data_format,
        )

    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """torch's ``ConvTranspose2d`` layout: ``(C_in, C_out // groups, h, w)``."""
        return (self.in_channels, self.out_channels // self.groups, *self.kernel_size)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,)

    def initial(self, seed: int, weight_init=None, bias_init=None) -> dict[str, np.ndarray | None]:
        """As ``LayerSpec.initial``; torch's default draws on ``fan_in = out_channels // groups * h * w``."""
        return initial_parameters(self, seed, weight_init, bias_init)

    arrays = LayerSpec.arrays

    def _check(self, x, weight):
        return validate_transpose({
            "x": x, "w": weight, "stride": self.options.stride, "padding": self.padding,
            "output_padding": self.output_padding, "dilation": self.options.dilation, "groups": self.groups,
            "data_format": self.data_format,
        })  # fmt: skip

    def apply(self, weight, bias, x):
        """The forward pass: ``conv_transpose2d(x, weight, ...) + bias``."""
        return _transpose.transpose_multi(self._check(x, weight), x, weight, bias)

    def output_shape(self, x, weight) -> tuple[int, ...]:
        return _transpose_plan.out_shape(x, weight, self._check(x, weight).transpose)

    def vjp(self, weight, bias, x, g):
        """Gradients ``{"weight": ..., "bias": ...}`` of ``apply`` at output gradient ``g``."""
        call = self._check(x, weight)
        xp = call.xp
        _, gw = _transpose.transpose_multi_vjp(call, x, weight, g, need_x=False)
        channel = g.ndim - 1 if self.channels_last else g.ndim - 3
        axes = tuple(i for i in range(g.ndim) if i != channel)
        gb = None if bias is None else xp.astype(xp.sum(g, axis=axes), bias.dtype)
        return {"weight": gw, "bias": gb}

    def describe(self, dtype: str | None = None) -> str:
        parts = [f"{self.kernel_size}", f"in_channels={self.in_channels}, out_channels={self.out_channels}"]
        o = self.options
        if o.stride != (1, 1):
            parts.append(f"stride={o.stride}")
        if self.padding != ((0, 0), (0, 0)):
            parts.append(f"padding={self.padding}")
        if self.output_padding != (0, 0):
            parts.append(f"output_padding={self.output_padding}")
        if o.dilation != (1, 1):
            parts.append(f"dilation={o.dilation}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if not self.bias:
            parts.append("bias=False")
        if self.channels_last:
            parts.append('data_format="channels_last"')
        parts.append(f"backend={self.backend!r}, dtype={dtype or self.dtype!r}")
        return ", ".join(parts)
