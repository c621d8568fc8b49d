"""Per-call dispatch from the arrays' library to its adapter in ``xcorr.backends``.

There is no global backend switch: each call looks at the namespace of the
arrays it was given. Adapter modules are imported lazily, the first time an
array of their library shows up, so ``import xcorr`` imports no framework.
"""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from ._compat import backend_name


@cache
def _adapter(name: str) -> ModuleType | None:
    # The tree is the table: a library has an adapter iff backends/<name>.py exists.
    module = f"xcorr.backends.{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        return None


def adapter(xp) -> ModuleType | None:
    """The adapter module for namespace ``xp``, or None for generic-only libraries."""
    return _adapter(backend_name(xp))


def hook(xp, name: str):
    """Function ``name`` of the adapter for ``xp``, or None if it has none."""
    module = adapter(xp)
    return getattr(module, name, None) if module is not None else None
