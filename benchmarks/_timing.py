"""Interleaved timing and peak-memory measurement for one process.

Multi-threaded libraries leave worker threads spinning for about 0.1 s after a
call; a short pause before every timed sample keeps one library's spinning
threads from slowing the next one down (PERF-NOTES). Candidates of one case
are timed in rotating order, so drifting machine load hits all of them alike.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable

PAUSE_S = 0.15
# A candidate whose warm-up call takes longer than this is timed once more only.
LONG_S = 1.5


def measure(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each zero-argument candidate, interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    long: set[str] = set()
    for name, fn in candidates.items():  # warm-up: compilation, caches, plans
        start = time.perf_counter()
        fn()
        if time.perf_counter() - start > LONG_S:
            long.add(name)
    names = list(candidates)
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if name in long and samples[name]:
                continue
            time.sleep(PAUSE_S)
            start = time.perf_counter()
            candidates[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_extra_bytes(fn: Callable[[], object]) -> float | None:
    """Resident memory high-water mark of one call above the resident size before it.

    Linux only (``/proc/self/clear_refs`` resets the high-water mark); glibc's
    free heap pages are released first (``malloc_trim``), so that reusing them
    counts. It counts the result too. Memory that an allocator keeps pooled
    from earlier calls (jax) is not seen again: small numbers are lower bounds.
    """
    try:
        gc.collect()
        _trim()
        before = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        result = fn()
        peak = _status_kib("VmHWM")
        del result
    except OSError:
        return None
    return max(0, peak - before) * 1024.0


def _trim() -> None:
    """Give free heap pages back to the system (glibc), so reusing them shows in the RSS."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"
