"""Adapters loaded when a compiler that traces Python is imported, before it traces a first call.

``torch.compile`` traces Python. xcorr's public functions reach its graphs whole because the
torch adapter registers them with dynamo (``torch.compiler.allow_in_graph``) when it loads;
but a first call inside a compiled function, before xcorr has seen a torch tensor, would load
the adapter mid-trace, and dynamo refuses the import (``importlib`` is on its skip list). So
the adapter loads as soon as its library's ``Library.tracer`` module is imported (wrapt's
post-import hook, which runs at once where the module already is). wrapt comes with the
``torch`` extra; without it, one call outside the compiled function, or
``import xcorr.backends.torch``, does the same.
"""

from __future__ import annotations

import functools
import sys

from ._registry import LIBRARIES, Library, adapter_named


def _load(lib: Library, _tracer: object) -> None:
    # An adapter module already in sys.modules has registered the functions, or is importing
    # the tracer itself and registers them as it finishes.
    if lib.adapter_module not in sys.modules:
        adapter_named(lib.name)


def watch() -> None:
    """Load each library's adapter when (or now, if already) its ``tracer`` module is imported."""
    try:
        from wrapt import register_post_import_hook  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return
    for lib in LIBRARIES:
        if lib.tracer is not None:
            register_post_import_hook(functools.partial(_load, lib), lib.tracer)
