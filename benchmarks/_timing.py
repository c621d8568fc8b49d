"""Interleaved timing and peak-memory measurement for one process.

Multi-threaded libraries leave worker threads spinning for about 0.1 s after a
call; a short pause before every timed sample keeps one library's spinning
threads from slowing the next one down (PERF-NOTES). Candidates of one case
are timed in rotating order, so drifting machine load hits all of them alike.

Every candidate gets exactly the number of samples asked for: ``Timings``
carries the count next to each median, and the tables print it.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PAUSE_S = 0.15
# Each sample of a microsecond-scale call is a loop of calls lasting at least this long.
SMALL_SAMPLE_S = 0.05
# At least this many samples of such calls, whatever --repeats says: their times on a
# shared 2-core machine swing by 30% between samples, and a sample costs a fraction of a second.
SMALL_MIN_REPEATS = 9


@dataclass
class Timings:
    """Median seconds per call of each candidate, with the number of samples behind each."""

    median: dict[str, float] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    calls_per_sample: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.median[name]

    def get(self, name: str, default=None):
        return self.median.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.median

    def count(self, name: str) -> int:
        return len(self.samples[name])


def _interleaved(
    candidates: dict[str, Callable[[], object]], repeats: int, loops: dict[str, int], pause: float, warm: bool = False
):
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, n = candidates[name], loops[name]
            if pause:
                time.sleep(pause)
            if warm:
                fn()
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return samples


def measure(candidates: dict[str, Callable[[], object]], repeats: int, *, warm_each: bool = False) -> Timings:
    """Median seconds per call of each zero-argument candidate: ``repeats`` interleaved samples each.

    One untimed warm-up call per candidate first (compilation, caches, plans). ``warm_each``: an
    untimed call of the candidate right before each timed one, so that each sample finds the
    memory allocator as the candidate's own last call left it (a call repeated in a loop), not as
    the candidate timed before it did: whether a fresh output's pages are still mapped or must be
    faulted in again otherwise follows the order of the candidates (PERF-NOTES).
    """
    for fn in candidates.values():
        fn()
    loops = dict.fromkeys(candidates, 1)
    samples = _interleaved(candidates, repeats, loops, PAUSE_S, warm_each)
    return Timings({n: statistics.median(v) for n, v in samples.items()}, samples, loops)


def measure_small(candidates: dict[str, Callable[[], object]], repeats: int) -> Timings:
    """Median seconds per call of microsecond-scale candidates (``timeit``-style).

    After warm-up calls, each candidate's loop length is chosen as
    ``timeit.Timer.autorange`` does (1, 2, 5, 10, 20, ... calls until a loop
    lasts ``SMALL_SAMPLE_S``); then ``repeats`` interleaved samples of that
    many back-to-back calls each (at least ``SMALL_MIN_REPEATS``), and the
    median of their per-call means.
    """
    repeats = max(repeats, SMALL_MIN_REPEATS)
    loops = {}
    for name, fn in candidates.items():
        for _ in range(3):
            fn()
        n = 1
        while True:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            if time.perf_counter() - start >= SMALL_SAMPLE_S:
                break
            n = n * 5 // 2 if str(n)[0] == "2" else n * 2
        loops[name] = n
    samples = _interleaved(candidates, repeats, loops, PAUSE_S / 3)
    return Timings({n: statistics.median(v) for n, v in samples.items()}, samples, loops)


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


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cores() -> int:
    """CPUs this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine() -> str:
    return f"{cpu_model()}, {cores()} cores"


def load_average() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def load() -> str:
    avg = load_average()
    return "load average unknown" if avg is None else "load average " + " ".join(f"{a:.2f}" for a in avg)
