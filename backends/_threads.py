"""The one worker-thread pool of the adapters: numpy's bands, numba's row chunks, torch's bands.

Every adapter that splits a large call between threads takes them from
``pool()``: one ``ThreadPoolExecutor`` per process, created on first use
(under a lock, so threads making their first calls at once share it) with
``count()`` workers. The callers never wait on the pool from inside it, so
one pool serves them all without deadlock.

Thread counts come from the machine: the CPUs this process may run on
(``os.sched_getaffinity``, which honours ``taskset``, cgroups' cpusets and
a parent's pinning), else ``os.cpu_count()``.

Fork-safe: a child made by ``os.fork()`` (multiprocessing's "fork" start
method, a torch ``DataLoader``'s workers) inherits the pool object but not
its threads, so work submitted to it would wait forever. After a fork the
child drops the pool, the lock and the cached count
(``os.register_at_fork``) and makes its own on first use.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_count: int | None = None


def count() -> int:
    """The number of CPUs this process may run on (at least 1)."""
    global _count
    if _count is None:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not on Linux (macOS, Windows)
            n = os.cpu_count() or 1
        _count = max(1, n)
    return _count


def pool() -> ThreadPoolExecutor:
    """The process's worker pool (``count()`` threads), created on first use."""
    executor = _pool
    if executor is None:
        executor = _create()
    return executor


def _create() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(count(), thread_name_prefix="xcorr")
        return _pool


def _after_fork_in_child() -> None:
    # The parent's worker threads do not exist here; its lock may have been
    # held by one of them at the fork. Start afresh (the old executor object
    # is left alone: shutting it down would wait for those threads).
    global _lock, _pool, _count
    _lock = threading.Lock()
    _pool = None
    _count = None


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)
