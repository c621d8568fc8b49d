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

import importlib
import math
import operator
import os
from dataclasses import dataclass

import numpy as np

from . import _adapter
from ._correlate import _correlate
from ._multi import apply_multi, check_multi, multi_vjp
from ._options import Options, check_arrays, parse_int, plan
from ._vjp import vjp

__all__ = ["ArrayConv2D", "Conv2D", "LayerSpec"]

DTYPES: tuple[str, ...] = ("float32", "float64", "float16", "bfloat16")


def resolve_backend(backend: object) -> str:
    """The backend name: ``backend``, else ``$XCORR_BACKEND``, else "numpy".

    Names are those of the adapter registry (``xcorr._adapter.LIBRARIES``) and
    any registered with ``xcorr.register_adapter``; the library is imported
    here, with an install hint when it is missing.
    """
    source = "backend"
    if backend is None:
        backend = os.environ.get("XCORR_BACKEND") or "numpy"
        source = "the environment variable XCORR_BACKEND"
    names = _adapter.known_names()
    if isinstance(backend, str):
        backend = _adapter.resolve_name(backend)
    if not isinstance(backend, str) or backend not in names:
        msg = f"{source} must be one of {', '.join(map(repr, names))}; got {backend!r}"
        raise ValueError(msg)
    lib = _adapter.library(backend)
    if lib is not None:
        try:
            importlib.import_module(lib.array_module)
        except ImportError as err:
            how = f"pip install 'xcorr[{lib.extra}]'" if lib.extra else f"install {backend}"
            msg = f"backend={backend!r} needs {lib.array_module}, which is not installed ({how}): {err}"
            raise ImportError(msg) from err
    return backend


def namespace(backend: str):
    """The array-API namespace whose arrays hold the parameters of ``backend``."""
    return _adapter.adapter_named(backend).namespace()


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
                if dtype == getattr(xp, name) or np.dtype(dtype) == name:
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

    @classmethod
    def parse(
        cls,
        kernel_size,
        *,
        in_channels=None,
        out_channels=None,
        mode="valid",
        boundary="fill",
        stride=1,
        dilation=1,
        groups=1,
        bias=True,
        backend=None,
        dtype=None,
        method="auto",
    ) -> LayerSpec:
        kernel = parse_kernel_size(kernel_size)
        options = Options.parse(
            mode=mode, boundary=boundary, stride=stride, dilation=dilation, method=method
        )
        groups = parse_int("groups", groups)
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
                msg = (
                    f"groups={groups} must divide in_channels={in_channels} and "
                    f"out_channels={out_channels}"
                )
                raise ValueError(msg)
        elif groups != 1:
            msg = f"groups={groups} needs in_channels and out_channels"
            raise ValueError(msg)
        if not isinstance(bias, bool):
            msg = f"bias must be True or False; got {bias!r}"
            raise TypeError(msg)
        backend = resolve_backend(backend)
        dtype = parse_dtype(dtype, backend)
        _adapter.adapter_named(backend).check_layer_dtype(dtype)
        return cls(
            kernel, in_channels, out_channels, options, groups, bias, dtype, backend
        )

    @property
    def channels(self) -> bool:
        return self.in_channels is not None

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if not self.channels:
            return self.kernel_size
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def bias_shape(self) -> tuple[int, ...]:
        return (self.out_channels,) if self.channels else ()

    def initial(self, seed: int) -> dict[str, np.ndarray | None]:
        """Initial parameters as NumPy arrays of ``dtype``, the same for every backend.

        A ``numpy.random.default_rng(seed)`` draws the weight, then the bias,
        in float64, rounded to ``dtype`` afterwards. Without channels both
        are standard normal, as in the seed notebook (``torch.randn``); with
        channels both are uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``,
        ``fan_in = in_channels // groups * h * w``, the distribution of
        ``torch.nn.Conv2d``'s default initialisation.
        """
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
        rng = np.random.default_rng(seed)
        if self.channels:
            bound = 1 / math.sqrt(self.weight_shape[1] * self.kernel_size[0] * self.kernel_size[1])
            weight = rng.uniform(-bound, bound, self.weight_shape)
            bias = rng.uniform(-bound, bound, self.bias_shape)
        else:
            weight = rng.standard_normal(self.weight_shape)
            bias = rng.standard_normal(self.bias_shape)
        # NumPy has no bfloat16: float32 here, rounded by the backend (``arrays``).
        dtype = "float32" if self.dtype == "bfloat16" else self.dtype
        weight = weight.astype(dtype)
        bias = np.asarray(bias, dtype=dtype)
        return {"weight": weight, "bias": bias if self.bias else None}

    def arrays(self, seed: int) -> dict:
        """``initial(seed)`` as arrays of the backend (on its default device)."""
        xp = namespace(self.backend)
        return {
            name: None if value is None else xp.asarray(value, dtype=getattr(xp, self.dtype))
            for name, value in self.initial(seed).items()
        }

    # -- the computation ----------------------------------------------------
    def apply(self, weight, bias, x):
        """The forward pass: ``corr2d(x, weight) + bias`` or its channel form."""
        if self.channels:
            y = apply_multi(x, weight, self.options, self.groups)
            if bias is not None:
                y = y + bias[:, None, None]
            return y
        y = _correlate(x, weight, self.options)
        return y if bias is None else y + bias

    def output_shape(self, x, weight) -> tuple[int, ...]:
        """Shape of ``apply(weight, bias, x)``, from the shapes alone (checks them too)."""
        if self.channels:
            _, geometry = check_multi(x, weight, self.options, self.groups)
            return (*x.shape[:-3], self.out_channels, geometry.rows.count, geometry.cols.count)
        check_arrays(x, weight)
        return plan(x.shape, weight.shape, self.options).out_shape

    def vjp(self, weight, bias, x, g):
        """Gradients ``{"weight": ..., "bias": ...}`` of ``apply`` at output gradient ``g``."""
        xp = check_arrays(x, weight)
        if self.channels:
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
        parts.append(f"mode={o.mode!r}, boundary={o.boundary!r}")
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
        parts.append(f"backend={self.backend!r}, dtype={dtype or self.dtype!r}")
        return ", ".join(parts)


def _layer_class(backend: str) -> type:
    return _adapter.adapter_named(backend).layer_class()


class Conv2D:
    """A trainable 2-D convolutional layer (cross-correlation plus bias) on any backend.

    ``Conv2D(kernel_size, /, *, in_channels=None, out_channels=None,
    mode="valid", boundary="fill", stride=1, dilation=1, groups=1, bias=True,
    backend=None, dtype=None, seed=0, method="auto")``

    Without channels it is the seed notebook's layer: ``layer(x) =
    corr2d(x, weight) + bias`` for an input of shape ``(..., H, W)``, a
    ``weight`` of shape ``kernel_size`` and a scalar ``bias``. With channels
    it is a convolutional layer: input ``(N, C_in, H, W)`` or
    ``(C_in, H, W)``, ``weight`` of shape ``(C_out, C_in // groups, h, w)``,
    ``bias`` of shape ``(C_out,)``, numerically equal to
    ``torch.nn.Conv2d`` with the same weights (``padding=0``, or ``"same"``
    with ``mode="same"``), and to ``corr2d_multi(x, weight, ...) + bias`` in
    every mode and boundary.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Height and width of the kernel.
    in_channels, out_channels : int, optional
        Give both for a channel layer; neither for the seed's layer.
    mode, boundary, stride, dilation
        As in ``xcorr.corr2d`` (the fill value is 0).
    groups : int, default 1
        Grouped correlation; must divide both channel counts.
    bias : bool, default True
        Whether the layer adds a learnable bias (``layer.bias`` is None
        otherwise).
    backend : {"numpy", "array_api_strict", "torch", "jax", "dask", "cupy"}, optional
        Where the parameters live. Default: the environment variable
        ``XCORR_BACKEND``, else "numpy". "torch" gives a ``torch.nn.Module``
        (``xcorr.backends.torch.Conv2D``), "jax" a pytree that ``jax.jit``,
        ``jax.grad`` and ``jax.vmap`` take directly
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

    Raises
    ------
    TypeError, ValueError
        Bad hyper-parameters, naming the argument: a kernel size that is not
        one or two ints >= 1, channel counts not >= 1 or not divisible by
        ``groups``, only one of ``in_channels``/``out_channels``, an unknown
        mode, boundary, backend or dtype.
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

    def __new__(cls, *args, **kwargs):
        if cls is Conv2D:
            cls = _layer_class(resolve_backend(kwargs.get("backend")))
        # Python then calls cls.__init__ with the same arguments.
        return object.__new__(cls)

    @staticmethod
    def _configure(backend: str, kernel_size, kwargs) -> tuple[LayerSpec, dict]:
        """Validate the arguments of a ``backend`` layer; return its spec and initial arrays."""
        kwargs = dict(kwargs)
        seed = kwargs.pop("seed", 0)
        requested = kwargs.pop("backend", None)
        if requested is not None and resolve_backend(requested) != backend:
            msg = f"backend={requested!r} given to the {backend} Conv2D class"
            raise ValueError(msg)
        spec = LayerSpec.parse(kernel_size, backend=backend, **kwargs)
        return spec, spec.arrays(seed)

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
