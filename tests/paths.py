"""Which fast path ran, and the one place where tests lower the thresholds that choose them.

Fast paths switch on size, dtype, batch shape and library. A test meant for
one of them must say so: ``spy`` records whether a path's function applied,
``count_calls`` counts calls of a library function a path makes (bands,
taps), and ``force`` moves the size thresholds so that small arrays take a
path. Every threshold a test lowers goes through ``force``: when the
thresholds move (into one tuning object per adapter), only ``force``
changes.
"""

from __future__ import annotations

import functools
import importlib

_NOT_GIVEN = object()


def spy(monkeypatch, module, name, *, declined=_NOT_GIVEN, measure=None):
    """Record, per call of ``module.name``, whether it applied (did not return ``declined``).

    Without ``declined`` every call counts as applied (functions that are
    only called on their path). ``measure(result)`` records something else
    of each call's result instead (the number of row chunks, ...).
    """
    applied = []
    real = getattr(module, name)

    @functools.wraps(real)
    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        if measure is not None:
            applied.append(measure(result))
        else:
            applied.append(declined is _NOT_GIVEN or result is not declined)
        return result

    monkeypatch.setattr(module, name, wrapper)
    return applied


class _Counting:
    """A stand-in for a module (``np``, ``torch``) seen by one adapter: everything is the
    module's own, except that calls of ``name`` are logged."""

    def __init__(self, target, name, log):
        real = getattr(target, name)

        def counted(*args, **kwargs):
            log.append(kwargs.get("out") is not None)
            return real(*args, **kwargs)

        self.__dict__["_target"] = target
        self.__dict__[name] = counted

    def __getattr__(self, attr):
        return getattr(self._target, attr)


def count_calls(monkeypatch, module, global_name, name):
    """Count the calls ``module`` makes to ``<its global global_name>.name`` (e.g. numpy.py's ``np.multiply``).

    Returns a list that gets one entry per call: whether it was given ``out=``.
    """
    log = []
    monkeypatch.setattr(module, global_name, _Counting(getattr(module, global_name), name, log))
    return log


# -- thresholds ---------------------------------------------------------------

# force(backend, name=value): the adapter whose Tuning holds the thresholds of
# each backend's paths (dask blocks run the numpy adapter's), and what else
# may be set. The names are the Tuning fields (see NumpyTuning, TorchTuning,
# JaxTuning): numba, numba_min_outputs, numba_threaded_work, band_bytes, gathered_*,
# threaded_elements, overlap_*, threaded_fft_elements (numpy); band_elements,
# pooled_elements, small_band, gathered_*, few_outputs, pooled_kernel, gradient_band,
# gradient_min_plane (torch); unroll_taps, pad_per_tap (jax).
ADAPTERS = {"numpy": "numpy", "dask": "numpy", "torch": "torch", "jax": "jax"}
# Besides the tuning: the threads of the shared pool (numpy, numba, torch, the
# custom calls' split), and on jax the huge-page advice of the custom calls.


def force(monkeypatch, backend: str, **values):
    """Set the thresholds ``values`` (fields of the adapter's Tuning) for this test.

    Also ``threads=n`` (the shared pool's thread count) and, on jax,
    ``hugepages=True/False`` and ``hugepage_min_bytes`` (whether and from
    which size the custom calls ask for huge pages); the compiled kernels are
    cached per configuration, so jax gets fresh caches for the test (and its
    own back afterwards).
    """
    import dataclasses

    adapter = importlib.import_module(f"xcorr.backends.{ADAPTERS[backend]}").ADAPTER
    fields = {f.name for f in dataclasses.fields(adapter.tuning)}
    tuning = {}
    for name, value in values.items():
        if name == "threads":
            threads = importlib.import_module("xcorr.backends._threads")
            # count(cap) as _threads.count: the forced count within the caller's cap
            monkeypatch.setattr(threads, "count", lambda cap=None, value=value: value if cap is None else min(value, cap))
        elif backend == "jax" and name == "hugepages":
            hugepages = importlib.import_module("xcorr.backends._hugepages")
            monkeypatch.setattr(hugepages, "enabled", lambda value=value: value)
        elif backend == "jax" and name == "hugepage_min_bytes":
            monkeypatch.setattr(importlib.import_module("xcorr.backends._hugepages"), "MIN_BYTES", value)
        elif name in fields:
            tuning[name] = value
        else:
            raise TypeError(f"force({backend!r}) has no threshold {name!r}; it knows {sorted(fields)}")
    if tuning:
        # A new tuning object: calls prepared under the old one prepare again.
        monkeypatch.setattr(adapter, "tuning", dataclasses.replace(adapter.tuning, **tuning))
    if backend == "jax":
        fresh_jax_traces(monkeypatch)


def fresh_jax_traces(monkeypatch):
    """jax's adapter caches one compiled kernel per configuration: start with empty caches
    (so that spies see the paths being traced), and restore the old ones afterwards."""
    for module, name in (("ops", "forward_kernel"), ("autodiff", "differentiable_kernel")):
        module = importlib.import_module(f"xcorr.backends.jax.{module}")
        monkeypatch.setattr(module, name, functools.cache(getattr(module, name).__wrapped__))
