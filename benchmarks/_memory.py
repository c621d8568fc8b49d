"""The "memory" table of ``python -m benchmarks`` (issue 24): the extra memory of the calls of the
limit table, measured, not assumed.

Each measurement runs in a fresh interpreter (``python -m benchmarks._memory BACKEND N H W CALL``):
it builds the float32 image, kernel and output gradient, makes the call twice (compilation,
thread pools and plans happen then) and once more under ``_timing.peak_extra_bytes`` (the
rise of the peak resident size over the resident size before the call, after garbage
collection and ``malloc_trim``). The extra memory is that rise less the arrays the call must
make: the output, and for fwd+bwd the output and both gradients (whether the call returns the
output, as numpy's does, or lets it go, as torch's backward and jax's ``value_and_grad`` do).
It is given in units of one output. The fresh copy (``_limit``'s, into a new array) is the yardstick: its
extra is the measurement's own noise. jax's allocator pools memory from the warm calls, so its
numbers are lower bounds. Linux only (``/proc``); elsewhere a note says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from . import _limit
from ._timing import cores, peak_extra_bytes

CALLS = ("fresh copy", "fwd", "fwd+bwd")
KERNEL = (3, 3)
PAGE = 4096
ROOT = Path(__file__).resolve().parent.parent


def measure(backend: str, n: int, h: int, w: int, call: str) -> dict[str, int | None]:
    """The extra bytes of one call (in this process, which should be fresh), and its output's bytes."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n), dtype=np.float32)
    k = rng.standard_normal((h, w), dtype=np.float32)
    g = rng.standard_normal((n - h + 1, n - w + 1), dtype=np.float32)
    calls = _limit.candidates(backend, x, k, g, cores())
    fn = calls[call]
    for _ in range(2):
        fn()
    arrays = (g, x, k) if call == "fwd+bwd" else (g,)  # the shapes of y; of y, gx and gk
    needed = sum(-(-a.nbytes // PAGE) * PAGE for a in arrays)  # resident sizes count whole pages
    peak = peak_extra_bytes(fn)
    return {"extra": None if peak is None else int(peak) - needed, "output": g.nbytes}


def memory_table(report, backends, sizes) -> None:
    """One row per backend, size and call: the extra memory, in MiB and in outputs."""
    table = report.table(
        "memory",
        f"Extra memory of the limit table's calls (float32, valid mode, {KERNEL[0]}x{KERNEL[1]}; peak resident size)",
        ["backend", "case", "call", "extra MiB", "outputs"],
        "lllrr",
    )
    for backend in backends:
        for n in sizes:
            for call in CALLS:
                args = [sys.executable, "-m", "benchmarks._memory", backend, str(n), *map(str, KERNEL), call]
                run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
                got = json.loads(run.stdout.strip().splitlines()[-1])
                extra, output = got["extra"], got["output"]
                if extra is None:
                    report.note("memory: not measured (needs Linux's /proc/self/clear_refs)")
                    return
                table.row(
                    [backend, f"{n}² {KERNEL[0]}x{KERNEL[1]}", call, f"{extra / 2**20:.1f}", f"{extra / output:.2f}"],
                    {"backend": backend, "size": n, "kernel": list(KERNEL), "call": call, "extra_bytes": extra,
                     "output_bytes": output, "outputs": extra / output},
                )
    report.note(
        "extra: the rise of the peak resident size during one warm call, less the arrays it must make "
        "(fwd: the output; fwd+bwd: the output and both gradients), in MiB and in outputs "
        "(one output is (N-2)² float32); each in a fresh process, after malloc_trim. The fresh copy is "
        "the yardstick: its extra is the measurement's noise. jax's allocator pools memory from the warm calls: its "
        "numbers are lower bounds (below zero where the pool held the needed arrays)."
    )


if __name__ == "__main__":
    backend, n, h, w, call = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
    print(json.dumps(measure(backend, n, h, w, call)))
