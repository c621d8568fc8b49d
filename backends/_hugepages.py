"""Transparent huge pages for large fresh outputs (Linux), as numpy does for its own arrays.

A large output is a fresh ``mmap`` every call, and the kernel faults its
pages in one 4 KiB page at a time on first write: for a large float32 output
that costs torch and XLA about as much as the whole shift-and-add (the
README's Performance section has the measurements). numpy asks the kernel for
transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every allocation of
at least 4 MiB; torch and XLA do not, so the adapters ask for the outputs
they allocate and fill themselves.
It only applies where the kernel's THP mode is "madvise" (with "always"
the pages are huge already; with "never" nothing helps), and it is a hint:
results never depend on it.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache

# Outputs of at least this many bytes are advised (numpy's threshold).
MIN_BYTES = 1 << 22
MADV_HUGEPAGE = 14  # Linux
PAGE = 4096
THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


@cache
def enabled() -> bool:
    """Whether advising helps here: Linux with transparent huge pages in "madvise" mode."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open(THP_MODE) as f:
            return "[madvise]" in f.read()
    except OSError:
        return False


@cache
def _madvise():
    libc = ctypes.CDLL(None, use_errno=True)
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def advise(address: int, nbytes: int) -> None:
    """Ask for huge pages for ``nbytes`` at ``address`` (memory not written yet), where that helps."""
    if nbytes < MIN_BYTES or not enabled():
        return
    start, stop = -(-address // PAGE) * PAGE, (address + nbytes) // PAGE * PAGE  # whole pages only
    _madvise()(start, stop - start, MADV_HUGEPAGE)  # a hint: a failure changes nothing
