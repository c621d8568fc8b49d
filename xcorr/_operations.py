"""What the array-API operations need from the adapter they are handed.

The operations (``_composite``, ``_prepared``) take an adapter and call back
into it, so that its fast paths serve the correlations inside them; they see
it only through :class:`AdapterOperations`, never through the contract
(``xcorr._adapter.Adapter`` satisfies it), so they stand below the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ._cost_model import Costs
from ._options import Geometry, Options
from ._typing import Array, AxisInts, AxisPads, Namespace


class AdapterOperations(Protocol):
    """The part of ``xcorr._adapter.Adapter`` that the operations below it call."""

    # Read-only here: the contract declares most of them as class variables.
    @property
    def name(self) -> str: ...
    @property
    def tuning(self) -> Any: ...  # ``xcorr._adapter.Tuning``: compared by identity only
    @property
    def native(self) -> bool: ...
    @property
    def eager(self) -> bool: ...
    @property
    def autodiff(self) -> bool: ...
    @property
    def devices(self) -> bool: ...
    @property
    def vecdot_kernel_gradient(self) -> bool: ...
    @property
    def native_axes(self) -> tuple[int, ...]: ...

    def correlate(self, xp: Namespace, x: Array, k: Array, options: Options, geometry: Geometry) -> Array: ...

    def prepare_correlate(
        self, xp: Namespace, x: Array, k: Array, options: Options, geometry: Geometry
    ) -> Callable[[Array, Array], Array]: ...

    def prepare_auto_fft(
        self, xp: Namespace, x: Array, k: Array, options: Options, geometry: Geometry
    ) -> Callable[[Array, Array], Array]: ...

    def finite_or(self, xp: Namespace, a: Array, fast: Callable[[], Array], careful: Callable[[], Array]) -> Array: ...

    def scatter_taps(self, xp: Namespace, g: Array, kc: Array, options: Options, geometry: Geometry) -> Array: ...

    def same_device(self, x: Array, k: Array) -> bool: ...

    def values_visible(self, *arrays: Array) -> bool: ...

    def auto_native(self, w: Array, groups: int) -> bool: ...

    def costs(self, k_shape: tuple[int, ...], geometry: Geometry) -> Costs: ...

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
    ) -> tuple[Array | None, Array | None]: ...

    def kernel_gradient(
        self, xp: Namespace, x: Array, k: Array, g: Array, options: Options, geometry: Geometry, method: str
    ) -> Array: ...

    def kernel_gradient_sum(
        self, xp: Namespace, xe: Array, g: Array, options: Options, k_shape: tuple[int, ...]
    ) -> Array: ...

    def prepare_multi_native(
        self, xp: Namespace, pads: AxisPads, stride: AxisInts, dilation: AxisInts, groups: int
    ) -> Callable[[Array, Array, Array | None], Array]: ...
