"""The registry of adapters: which adapter serves which array library, looked up per call.

Adapters are looked up per call from the arrays' namespace (:func:`adapter_for`), never from a
global switch. The table below (:data:`LIBRARIES`) is the only place in the core that names a
framework: which module serves which namespace, which array module ``Conv2D(backend=...)``
imports and which pip extra installs it. Modules are imported lazily, the first time an array of
their library shows up, so ``import xcorr`` imports no framework. Libraries xcorr does not ship
can register their own adapter with :func:`register_adapter`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _compat
from ._adapter import Adapter
from ._prepared import clear_prepared
from ._typing import Namespace

__all__ = ["LIBRARIES", "Library", "adapter_for", "adapter_named", "register_adapter", "unregister_adapter"]


@dataclass(frozen=True)
class Library:
    """One row of the registry: how to recognise a namespace, and who serves it."""

    name: str
    is_namespace: Callable[[Any], bool]
    adapter_module: str | None  # module whose ``ADAPTER`` serves it; None: the generic adapter
    array_module: str  # what ``Conv2D(backend=name)`` imports
    extra: str | None = None  # the pip extra that installs it
    aliases: tuple[str, ...] = field(default=())
    tracer: str | None = None  # a compiler's module: once imported, it may trace xcorr (xcorr/_tracers.py)


# The table of which module serves which namespace: the only place where the
# core names frameworks.
LIBRARIES: tuple[Library, ...] = (
    Library("numpy", _compat.is_numpy_namespace, "xcorr.backends.numpy", "numpy"),
    Library("torch", _compat.is_torch_namespace, "xcorr.backends.torch", "torch", "torch", tracer="torch._dynamo"),
    Library("jax", _compat.is_jax_namespace, "xcorr.backends.jax", "jax.numpy", "jax"),
    Library("dask", _compat.is_dask_namespace, "xcorr.backends.dask", "dask.array", "dask"),
    Library("cupy", _compat.is_cupy_namespace, None, "cupy"),
    Library(
        "array_api_strict", _compat.is_array_api_strict_namespace, None, "array_api_strict", "test",
        aliases=("strict", "array-api-strict"),
    ),
)
_BY_NAME: dict[str, Library] = {lib.name: lib for lib in LIBRARIES}

_lock = threading.Lock()
_registered: dict[Any, Adapter] = {}  # namespace object or name -> adapter (register_adapter)
_loaded: dict[str, Adapter] = {}  # registry name -> adapter, once loaded
_by_namespace: dict[int, tuple[Any, Adapter]] = {}  # id(xp) -> (xp, adapter): the per-call lookup


def register_adapter(library: Any, adapter: Adapter) -> None:
    """Serve arrays of ``library`` with ``adapter``.

    ``library`` is the namespace object that ``array_namespace`` returns for
    the library's arrays (``x.__array_namespace__()``), or its registry name
    (also usable as ``Conv2D(backend=name)``). Replaces any adapter that
    served it before, shipped ones included.

    Parameters
    ----------
    library : namespace or str
        The library's array namespace, or its registry name ("numpy",
        "torch", ... or a new one).
    adapter : Adapter
        The adapter that serves it from now on.

    Raises
    ------
    TypeError
        ``adapter`` is not an ``xcorr.Adapter``.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> xcorr.register_adapter("numpy", xcorr.Adapter(name="numpy", array_module="numpy"))
    >>> xcorr.adapter_for(np)
    <Adapter 'numpy'>
    >>> xcorr.unregister_adapter("numpy")
    >>> xcorr.adapter_for(np)
    <NumpyAdapter 'numpy'>
    """
    if not isinstance(adapter, Adapter):
        msg = f"adapter must be an instance of xcorr.Adapter; got {type(adapter).__name__}"
        raise TypeError(msg)
    with _lock:
        _registered[library] = adapter
        if isinstance(library, str):
            _loaded[library] = adapter
        _by_namespace.clear()
    clear_prepared()


def unregister_adapter(library: Any) -> None:
    """Undo :func:`register_adapter` for ``library`` (a KeyError if it was not registered).

    Parameters
    ----------
    library : namespace or str
        As given to :func:`register_adapter`; the shipped adapter, if any,
        serves it again.

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> xcorr.register_adapter("numpy", xcorr.Adapter(name="numpy", array_module="numpy"))
    >>> xcorr.unregister_adapter("numpy")
    >>> xcorr.adapter_for(np)
    <NumpyAdapter 'numpy'>
    """
    with _lock:
        del _registered[library]
        if isinstance(library, str):
            _loaded.pop(library, None)
        _by_namespace.clear()
    clear_prepared()


def library_name(xp) -> str:
    """The registry name of namespace ``xp`` (its module name for unknown libraries)."""
    for lib in LIBRARIES:
        if lib.is_namespace(xp):
            return lib.name
    return getattr(xp, "__name__", type(xp).__name__)


def adapter_for(xp: Namespace) -> Adapter:
    """The adapter that serves namespace ``xp``: registered, shipped, or the generic one.

    Parameters
    ----------
    xp : namespace
        An array namespace (``array_api_compat.array_namespace(x)``) or the
        library's module.

    Returns
    -------
    Adapter

    Examples
    --------
    >>> import numpy as np
    >>> import xcorr
    >>> xcorr.adapter_for(np)
    <NumpyAdapter 'numpy'>
    >>> xcorr.adapter_for(np).tuning.costs.min_fft_taps
    16
    """
    hit = _by_namespace.get(id(xp))
    if hit is not None and hit[0] is xp:
        return hit[1]
    adapter = _registered.get(xp) if _hashable(xp) else None
    if adapter is None:
        adapter = adapter_named(library_name(xp))
    with _lock:
        _by_namespace[id(xp)] = (xp, adapter)
    return adapter


def adapter_named(name: str) -> Adapter:
    """The adapter of registry name ``name`` (importing its module on first use)."""
    adapter = _loaded.get(name)
    if adapter is not None:
        return adapter
    lib = _BY_NAME.get(name)
    if lib is None or lib.adapter_module is None:
        adapter = Adapter(name, lib.array_module if lib is not None else None)
    else:
        adapter = importlib.import_module(lib.adapter_module).ADAPTER
    with _lock:
        return _loaded.setdefault(name, adapter)


def resolve_name(name: str) -> str:
    """``name`` or the canonical name it is an alias of."""
    for lib in LIBRARIES:
        if name in lib.aliases:
            return lib.name
    return name


def known_names() -> tuple[str, ...]:
    """Registry names usable as ``Conv2D(backend=...)``: shipped and registered libraries."""
    extra = tuple(n for n in _registered if isinstance(n, str) and n not in _BY_NAME)
    return tuple(_BY_NAME) + extra


class MissingLibrary(ImportError):
    """The array module of a registry row is not installed: which module, why, and how to install it."""

    def __init__(self, lib: Library, cause: ImportError) -> None:
        super().__init__(f"{lib.array_module} is not installed ({cause})")
        self.module, self.cause = lib.array_module, cause
        self.pip = f"pip install 'xcorr[{lib.extra}]'" if lib.extra else None


def import_library(name: str) -> None:
    """Import the array module of registry name ``name`` (nothing for a name the table does not list);
    a :class:`MissingLibrary` where it is not installed."""
    lib = _BY_NAME.get(name)
    if lib is not None:
        try:
            importlib.import_module(lib.array_module)
        except ImportError as err:
            raise MissingLibrary(lib, err) from err


def _hashable(obj) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True
