"""The contract between xcorr's core and an array library: :class:`Adapter`.

Every operation that may differ between array libraries is a method of
:class:`Adapter`. The base class is the generic adapter: it implements all of
them in pure array-API code, so any library that speaks the standard works
unchanged. ``xcorr.backends.<library>`` defines one subclass per framework
that overrides what its library does better (a native convolution, an
autodiff rule, a compiled kernel) and calls ``super()`` for the rest.

The registry (``xcorr._registry``) says which adapter serves which library; adapters are looked
up per call from the arrays' namespace, never from a global switch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

import numpy as np

from . import _compat, _composite, _direct, _fft, _prepared, _training, _typing
from ._cost_model import Costs, Tuning
from ._layout import to_first, to_last
from ._options import Geometry, Options
from ._transpose_plan import TransposePlan

__all__ = ["Adapter", "Costs", "Tuning"]

# An array of the adapter's library; a namespace of array-API functions (both without static types).
Array = _typing.Array
Namespace = _typing.Namespace
#: A layer of the adapter's library (an ``xcorr.Conv2D``, defined above this contract), returned as
#: the same class.
LayerT = TypeVar("LayerT")


#: The generic layers (arrays held in plain objects), by base class name: ``xcorr._layer``
#: defines them on top of this contract and registers them here.
GENERIC_LAYERS: dict[str, type] = {}


class Adapter:
    """What an array library's adapter may provide; the generic implementation of each.

    Every method receives validated arguments: ``xp`` is the arrays' namespace, ``options`` the
    normalised :class:`xcorr._options.Options` (with ``method`` resolved to "direct", "fft" or
    "native" where noted) and ``geometry`` the :class:`xcorr._options.Geometry` of the call.
    Overrides keep these signatures (a test checks every adapter against them) and call ``super()``
    where their fast path does not apply.

    Parameters
    ----------
    name : str, optional
        The registry name (``Conv2D(backend=name)``); default "generic".
    array_module : str, optional
        The module whose arrays ``namespace()`` makes (e.g. "numpy").

    Examples
    --------
    The generic adapter (an array-API implementation of every method) serving numpy arrays:

    >>> import numpy as np
    >>> import xcorr
    >>> shipped = xcorr.adapter_for(np)
    >>> xcorr.register_adapter("numpy", xcorr.Adapter(name="numpy", array_module="numpy"))
    >>> xcorr.adapter_for(np)
    <Adapter 'numpy'>
    >>> xcorr.corr2d(np.ones((3, 3)), np.ones((2, 2))).tolist()
    [[4.0, 4.0], [4.0, 4.0]]
    >>> xcorr.unregister_adapter("numpy")
    >>> xcorr.adapter_for(np) is shipped
    True
    """

    #: Name of the library in the registry (``Conv2D(backend=name)``).
    name: str = "generic"
    #: The module ``namespace()`` takes its arrays from (e.g. "numpy").
    array_module: str | None = None
    #: The adapter's thresholds and cost model.
    tuning: Tuning = Tuning()
    #: Whether ``method="native"`` has a library convolution to call.
    native: ClassVar[bool] = False
    #: Whether arrays are eager, so that ``method="auto"`` may look at their values (a NaN or inf
    #: must not go through an FFT). False for lazy (dask) and traced (jax) arrays.
    eager: ClassVar[bool] = True
    #: Whether the library differentiates any function itself (``gradient``).
    autodiff: ClassVar[bool] = False
    #: Whether two arrays of one type, shape and dtype may be on different devices, so that a
    #: repeated call checks their devices again.
    devices: ClassVar[bool] = True
    #: Whether the direct kernel gradient takes ``vecdot`` along rows (one pass, no product
    #: temporary) rather than ``sum(g * window)``.
    vecdot_kernel_gradient: ClassVar[bool] = False
    #: The numbers of spatial axes (1, 3) that ``prepare_multi_native`` convolves natively.
    native_axes: ClassVar[tuple[int, ...]] = ()
    #: Whether ``correlate_volume`` computes ``corr3d`` and ``conv3d`` whole (dask: one task per
    #: block of the volume), rather than the core summing one 2-D correlation per depth tap.
    volumes: ClassVar[bool] = False
    #: The names of the native convolution's own options that ``correlate_multi_options`` takes
    #: (``corr2d_multi`` keywords passed through); the core refuses any other name given.
    native_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str | None = None, array_module: str | None = None) -> None:
        if name is not None:
            self.name = name
        if array_module is not None:
            self.array_module = array_module

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # -- single-plane correlation ---------------------------------------------
    def correlate(self, xp: Namespace, x: Array, k: Array, options: Options, geometry: Geometry) -> Array:
        """``corr2d``/``conv2d`` of validated inputs; ``options.method`` is resolved.

        Generic: shift-and-add over the kernel taps ("direct", "native"), or
        ``xp.fft`` ("fft").
        """
        if options.method == "fft":
            return _fft.correlate(xp, x, k, options, geometry)
        return _direct.correlate(xp, x, k, options, geometry)

    def prepare_correlate(
        self, xp: Namespace, x: Array, k: Array, options: Options, geometry: Geometry
    ) -> Callable[[Array, Array], Array]:
        """The correlation of one signature as a function of ``(x, k)``, reused for every call of it.

        Called once per signature (array types, shapes, dtypes and options,
        with ``options.method`` resolved); ``x`` and ``k`` are that first
        call's arrays, of which only the signature may be relied on. Work
        that depends only on the signature belongs here. Generic:
        :meth:`correlate` with these options and geometry.
        """
        return lambda x, k: self.correlate(xp, x, k, options, geometry)

    def prepare_auto_fft(
        self, xp: Namespace, x: Array, k: Array, options: Options, geometry: Geometry
    ) -> Callable[[Array, Array], Array]:
        """What :meth:`prepare_correlate` gives where ``method="auto"`` picked "fft" (``options.method``)
        for arrays whose values cannot be looked at when preparing (``eager = False``: lazy, traced).

        The non-finite rule: "auto" never changes which outputs are non-finite, so the result must be
        the direct method's wherever a NaN or inf would reach the FFT (an adapter may decide inside
        the computation: jax by ``lax.cond``, dask block by block). Generic: the direct method, as
        finiteness is unknown.
        """
        return self.prepare_correlate(xp, x, k, replace(options, method="direct"), geometry)

    def scatter_taps(self, xp: Namespace, g: Array, kc: Array, options: Options, geometry: Geometry) -> Array:
        """The input gradient's IEEE form for a non-finite kernel (``_composite.scatter_taps``)."""
        return _composite.scatter_taps(xp, g, kc, options, geometry)

    def finite_or(self, xp: Namespace, a: Array, fast: Callable[[], Array], careful: Callable[[], Array]) -> Array:
        """``fast()`` where every element of ``a`` is finite, else ``careful()`` (which keeps NaN and
        inf where IEEE arithmetic puts them), of one shape and dtype. Generic: the values are read (a small
        array: a kernel; dask computes it); values that cannot be (``values_visible``: a tracer, a vmapped
        tensor) take ``careful``, which is right for any values. jax decides inside the program."""
        try:
            finite = self.values_visible(a) and bool(xp.all(xp.isfinite(a)))
        except (RuntimeError, TypeError, ValueError):
            return careful()
        return fast() if finite else careful()

    def same_device(self, x: Array, k: Array) -> bool:
        """Whether ``x`` and ``k`` are on one device (asked on every call where ``devices`` is True)."""
        dx, dk = _compat.device(x), _compat.device(k)
        return dx is None or dk is None or dx == dk

    def values_visible(self, *arrays: Array) -> bool:
        """Whether ``arrays``' values can be read now (a lazy array's by computing it), as "auto" reads them
        before an FFT: generic, yes; an adapter whose arrays may be tracers says which are."""
        return True

    def auto_native(self, w: Array, groups: int) -> bool:
        """Whether "auto" hands a multi-channel correlation of weight ``w`` in ``groups`` groups to the
        library's own convolution (where the adapter has one): generic, yes."""
        return True

    def costs(self, k_shape: tuple[int, ...], geometry: Geometry) -> Costs:
        """The cost-model row for a call of this kernel shape and geometry."""
        return self.tuning.costs

    def vjp(
        self,
        xp: Namespace,
        x: Array,
        k: Array,
        g: Array,
        options: Options,
        geometry: Geometry,
        need_x: bool,
        need_k: bool,
    ) -> tuple[Array | None, Array | None]:
        """``(gx, gk)``: the transpose of the correlation at output gradient ``g``.

        ``options.method`` may still be "auto". A gradient that is not needed
        is None. Generic: the input gradient as a "full" correlation of the
        zero-inserted ``g``, folded back through the extension, and
        :meth:`kernel_gradient`.
        """
        return _composite.generic_vjp(self, xp, x, k, g, options, geometry, need_x, need_k)

    def kernel_gradient(
        self, xp: Namespace, x: Array, k: Array, g: Array, options: Options, geometry: Geometry, method: str
    ) -> Array:
        """The kernel gradient, correlation orientation, shape of ``k``, in the result dtype.

        ``x`` is already cast to the result dtype; ``method`` is "direct",
        "fft" or "native". Generic: one reduction per tap ("direct"), or one
        correlation of ``extend(x)`` with ``g`` as the kernel.
        """
        return _composite.generic_kernel_gradient(self, xp, x, k, g, options, geometry, method)

    def kernel_gradient_sum(
        self, xp: Namespace, xe: Array, g: Array, options: Options, k_shape: tuple[int, ...]
    ) -> Array:
        """``sum over planes of corr(xe, g)`` down to ``k_shape``: a kernel gradient as one correlation.

        ``options`` carries the swapped stride/dilation and the method.
        Generic: a broadcast correlation, then a sum over the broadcast planes.
        """
        return _direct.unbroadcast(xp, _prepared.correlate(self, xe, g, options), k_shape)

    # -- multi-channel correlation ----------------------------------------------
    def correlate_multi(
        self, xp: Namespace, x: Array, w: Array, options: Options, geometry: Geometry, groups: int
    ) -> Array:
        """``corr2d_multi`` of validated inputs (``options.method`` as given).

        Generic: one broadcast ``corr2d`` over (batch, group, out channel, in channel).
        """
        return _composite.generic_correlate_multi(self, xp, x, w, options, geometry, groups)

    def correlate_multi_bias(
        self, xp: Namespace, x: Array, w: Array, b: Array, options: Options, geometry: Geometry, groups: int
    ) -> Array:
        """``correlate_multi`` plus ``b`` (``(C_out,)``, of a dtype the output holds) on every output
        channel, channels first. Generic: ``correlate_multi``, then one broadcast add."""
        y = self.correlate_multi(xp, x, w, options, geometry, groups)
        return y + xp.astype(b, y.dtype)[:, None, None]

    def correlate_multi_options(
        self, xp: Namespace, x: Array, w: Array, options: Options, geometry: Geometry, groups: int, native: Mapping[str, Any]
    ) -> Array:
        """``corr2d_multi`` with options of the library's own convolution, ``native`` (names of
        ``native_options``, as checked by the core, each given); called instead of ``correlate_multi``
        when any is given. Generic: ``correlate_multi`` where ``native`` is empty (none to take)."""
        if native:
            raise NotImplementedError(f"{self.name} declares native_options but takes none: {', '.join(native)}")
        return self.correlate_multi(xp, x, w, options, geometry, groups)

    def correlate_multi_vjp(
        self,
        xp: Namespace,
        x: Array,
        w: Array,
        g: Array,
        options: Options,
        geometry: Geometry,
        groups: int,
        need_x: bool,
    ) -> tuple[Array | None, Array]:
        """``(gx, gw)`` of ``corr2d_multi``; ``gx`` is None unless ``need_x``.

        Generic: the single-plane VJP of the broadcast formulation.
        """
        return _composite.generic_multi_vjp(self, xp, x, w, g, options, geometry, groups, need_x)

    def correlate_multi_channels_last(
        self, xp: Namespace, x: Array, w: Array, options: Options, geometry: Geometry, groups: int
    ) -> Array:
        """``corr2d_multi`` of a channels-last ``x`` ``(N, H, W, C_in)``; the result ``(N, H', W', C_out)``.

        ``w`` keeps its ``(C_out, C_in // groups, h, w)`` layout and
        ``geometry`` is that of the channels-first call. Generic:
        :meth:`correlate_multi` on permuted views (no copy where the library
        permutes by strides: numpy, dask, torch's ``channels_last`` format).
        """
        y = self.correlate_multi(xp, to_first(xp, x), w, options, geometry, groups)
        return to_last(xp, y)

    def prepare_multi_native(
        self, xp: Namespace, pads: _typing.AxisPads, stride: _typing.AxisInts, dilation: _typing.AxisInts,
        groups: int,
    ) -> Callable[[Array, Array, Array | None], Array]:
        """``run(x, w, b)``, the valid correlation of ``x`` ``(N, C_in, *spatial)`` zero-padded by
        ``pads`` (a pair per axis) with ``w`` ``(C_out, C_in // groups, *taps)``, plus ``b`` (or
        None): the library's own convolution, made once per signature and called for
        float32/float64 operands of one dtype and ``len(pads)`` in ``native_axes``."""
        raise NotImplementedError(f"{self.name} has no native convolution in {len(pads)} dimensions")

    def correlate_volume(self, xp: Namespace, x: Array, k: Array, options: Options, geometry: Geometry) -> Array:
        """``corr3d`` of validated inputs ``x`` ``(..., D, H, W)`` and ``k`` (already flipped for
        ``conv3d``; ``options`` say correlate), over ``geometry``'s three axes: called where
        ``volumes`` is True."""
        raise NotImplementedError(f"{self.name} does not correlate volumes whole")

    def correlate_multi_transpose(self, xp: Namespace, x: Array, w: Array, plan: TransposePlan) -> Array:
        """``conv_transpose2d`` of validated inputs: the adjoint of ``corr2d_multi`` at ``x``.

        ``plan`` is a :class:`xcorr._transpose_plan.TransposePlan`: the forward
        (valid, zero-filled) correlation's options and geometry on the
        uncropped extent, the groups, the crop (``padding``), the
        ``output_padding``, the layout and the output size. Generic: the
        input gradient of the broadcast ``corr2d`` (its "full" correlation of
        the zero-inserted ``x``), cropped to the output.
        """
        return _composite.generic_transpose(self, xp, x, w, plan)

    def correlate_transpose(self, xp: Namespace, x: Array, k: Array, plan: TransposePlan) -> Array:
        """``corr2d_transpose`` of validated inputs in the result's dtype: ``x`` ``(..., H, W)``, ``k``
        ``(..., h, w)`` (batches broadcast), ``plan`` channels-first with one group. Generic: the
        input gradient of the forward ``corr2d`` on the uncropped extent, cropped to the output."""
        return _composite.generic_transpose_single(self, xp, x, k, plan)

    def correlate_multi_transpose_bias(self, xp: Namespace, x: Array, w: Array, b: Array, plan: TransposePlan) -> Array:
        """``correlate_multi_transpose`` plus ``b`` (shape ``(C_out,)``) on every output channel.

        ``b``'s dtype promotes to the output's (checked by the caller).
        Generic: ``correlate_multi_transpose``, then one broadcast add.
        """
        y = self.correlate_multi_transpose(xp, x, w, plan)
        b = xp.astype(b, y.dtype)
        return y + (b if plan.channels_last else b[:, None, None])

    # -- layers, training and gradients -----------------------------------------
    def namespace(self) -> Namespace:
        """The array-API namespace in which ``Conv2D(backend=self.name)`` holds its parameters."""
        if self.array_module is None:
            msg = f"adapter {self.name!r} names no array module; override Adapter.namespace"
            raise NotImplementedError(msg)
        module = importlib.import_module(self.array_module)
        return _compat.array_namespace(module.asarray(np.zeros(1)))

    def check_layer_dtype(self, dtype: str) -> None:
        """Raise ValueError if a layer cannot hold parameters of ``dtype`` ("float32"/"float64")."""

    def layer_class(self, name: str = "Conv2D") -> type:
        """The layer class ``name`` ("Conv2D", "Conv1D", "Conv3D", "Conv1DTranspose",
        "Conv3DTranspose") of this library (generic: arrays in a plain object)."""
        return GENERIC_LAYERS[name]

    def transpose_layer_class(self) -> type:
        """The ``Conv2DTranspose`` class of this library (generic: arrays held in a plain object)."""
        return GENERIC_LAYERS["Conv2DTranspose"]

    def fit(
        self, layer: LayerT, x: Array, y: Array, lr: float, steps: int, loss: str, record: Callable[[float], None]
    ) -> LayerT:
        """``steps`` of gradient descent on ``loss(layer(x), y)``; return the trained layer.

        ``record`` is called with each step's loss. Generic: the layer's VJP
        (``layer.grad``) and new arrays for the parameters.
        """
        return _training.fit_arrays(layer, x, y, lr, steps, loss, record)

    def gradient(
        self, fn: Callable[[Array], Array], x: Array, index: tuple[int, ...] | Any
    ) -> tuple[Array, str] | None:
        """``(d fn(x)[index] / dx, method name)`` by the library's autodiff, or None without one.

        ``index`` is a sequence of ints, its leading entries possibly left out
        (``xcorr._empirical.full_index`` completes and checks it).
        """
        return None

    # -- conversion ----------------------------------------------------------------
    def to_numpy(self, a: Array) -> np.ndarray:
        """A NumPy copy (or view) of ``a`` on the host."""
        try:
            return np.asarray(a)
        except TypeError:  # device arrays refuse implicit conversion
            return np.asarray(_compat.to_device(a, "cpu"))

    def from_numpy(self, a: np.ndarray, *, device: Any = None) -> Array:
        """``a`` as an array of this library, on ``device`` (None: the library's default)."""
        return self.namespace().asarray(a, device=device)

    def device(self, kind: str) -> Any:
        """A device of ``kind`` ("cpu" or "gpu") for :meth:`from_numpy`; None is the library's default.

        Raises LookupError, saying what is missing, where the library has no such device.
        """
        if kind == "cpu":
            return None
        msg = f"{self.name} has no {kind} device that xcorr knows how to reach"
        raise LookupError(msg)

    def with_parameters(self, layer: LayerT, params: dict[str, Array]) -> LayerT:
        """``layer`` (a ``Conv2D`` of this library) with the given parameters, on their device.

        ``params`` maps "weight" and/or "bias" to arrays of this library.
        Generic: the arrays are assigned (layers of plain arrays are mutable).
        """
        for name, value in params.items():
            setattr(layer, name, value)
        return layer
