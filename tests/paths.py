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

# force(..., name=value) sets, per backend:
_NUMBA = {
    "numba": ("xcorr.backends._numba", "ENABLED"),  # False: numba's kernels are not used (as if absent)
    "numba_min_outputs": ("xcorr._methods", "NUMBA_MIN_OUTPUTS"),  # outputs from which numba's kernels run
    "numba_threaded_work": ("xcorr._methods", "NUMBA_THREADED_WORK"),  # products from which rows are split
}
_NUMPY = {
    **_NUMBA,
    "band_bytes": ("xcorr.backends.numpy", "BAND_BYTES"),  # bytes of output per band of rows
    "threaded_elements": ("xcorr.backends.numpy", "THREADED_ELEMENTS"),  # outputs from which bands use threads
    "threads": ("xcorr.backends.numpy", "THREADS"),  # threads of the numpy and numba paths
    "overlap_min_block": ("xcorr.backends.numpy", "OVERLAP_MIN_BLOCK"),  # overlap-save / tiled backward
    "overlap_span_factor": ("xcorr.backends.numpy", "OVERLAP_SPAN_FACTOR"),
    "overlap_min_blocks": ("xcorr.backends.numpy", "OVERLAP_MIN_BLOCKS"),
    "overlap_band_points": ("xcorr.backends.numpy", "OVERLAP_BAND_POINTS"),
    "threaded_fft_elements": ("xcorr.backends.numpy", "THREADED_FFT_ELEMENTS"),
}
THRESHOLDS = {
    "numpy": _NUMPY,
    "dask": _NUMPY,  # dask blocks run the numpy adapter
    "torch": {
        "band_elements": ("xcorr.backends.torch", "BAND_ELEMENTS"),  # outputs per band (worker threads)
        "pooled_elements": ("xcorr.backends.torch", "POOLED_ELEMENTS"),  # outputs from which worker threads run
        "small_band": ("xcorr.backends.torch", "SMALL_BAND"),  # outputs per band on the calling thread
        "few_outputs": ("xcorr.backends.torch", "FEW_OUTPUTS"),  # taps per output of few_outputs
        "pooled_kernel": ("xcorr.backends.torch", "POOLED_KERNEL"),  # kernel elements of threaded few_outputs
        "gradient_band": ("xcorr.backends.torch", "GRADIENT_BAND"),  # g elements per bmm band
        "gradient_min_plane": ("xcorr.backends.torch", "GRADIENT_MIN_PLANE"),  # plane size of the bmm gradient
    },
    "jax": {
        **_NUMBA,
        "unroll_taps": ("xcorr.backends.jax", "UNROLL_TAPS"),  # taps of the unrolled shift-and-add
        "pad_per_tap": ("xcorr.backends.jax", "PAD_PER_TAP"),  # taps read through a pad each
        "fresh_output_bytes": ("xcorr._methods", "NUMBA_JAX_FRESH_OUTPUT_BYTES"),  # custom call inside x
        "hugepage_min_bytes": ("xcorr.backends._hugepages", "MIN_BYTES"),
        "threads": ("xcorr.backends._jax_numba", "THREADS"),  # threads of the custom calls' split
    },
}


def force(monkeypatch, backend: str, **values):
    """Set the thresholds ``values`` (names in ``THRESHOLDS[backend]``) for this test.

    On jax, also ``hugepages=True/False`` (whether the custom calls ask for
    huge pages); the compiled kernels are cached per configuration, so jax
    gets fresh caches for the test (and its own back afterwards).
    """
    names = THRESHOLDS[backend]
    for name, value in values.items():
        if backend == "jax" and name == "hugepages":
            hugepages = importlib.import_module("xcorr.backends._hugepages")
            monkeypatch.setattr(hugepages, "enabled", lambda value=value: value)
            continue
        if name not in names:
            raise TypeError(f"force({backend!r}) has no threshold {name!r}; it knows {sorted(names)}")
        module, attribute = names[name]
        monkeypatch.setattr(importlib.import_module(module), attribute, value)
    if backend == "jax":
        fresh_jax_traces(monkeypatch)


def fresh_jax_traces(monkeypatch):
    """jax's adapter caches one compiled kernel per configuration: start with empty caches
    (so that spies see the paths being traced), and restore the old ones afterwards."""
    jax_backend = importlib.import_module("xcorr.backends.jax")
    for name in ("_kernel", "_differentiable_kernel"):
        monkeypatch.setattr(jax_backend, name, functools.cache(getattr(jax_backend, name).__wrapped__))
