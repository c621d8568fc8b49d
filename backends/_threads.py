"""The one worker-thread pool of the adapters: numpy's bands, numba's row chunks, torch's bands.

Every adapter that splits a large call between threads takes them from
``pool()``: one ``ThreadPoolExecutor`` per process, created on first use
(under a lock, so threads making their first calls at once share it) with
``count()`` workers. The callers never wait on the pool from inside it, so
one pool serves them all without deadlock.

The pool has a worker for each CPU this process may run on
(``os.sched_getaffinity``, which honours ``taskset``, cgroups' cpusets and
a parent's pinning, else ``os.cpu_count()``). A call splits its work into
``count(cap)`` parts, so no more threads work on it than the limits a user
set allow: ``OMP_NUM_THREADS``, a ``threadpoolctl.threadpool_limits`` block
(the pool registers with threadpoolctl, as ``user_api="xcorr"``, when
threadpoolctl is installed), and ``cap``, the calling library's own setting
(``torch.get_num_threads()`` for torch tensors, ``numba.get_num_threads()``
on numba's paths).

Fork-safe: a child made by ``os.fork()`` (multiprocessing's "fork" start
method, a torch ``DataLoader``'s workers) inherits the pool object but not
its threads, so work submitted to it would wait forever. After a fork the
child drops the pool, the lock and the cached count
(``os.register_at_fork``) and makes its own on first use.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_count: int | None = None
_limit: int | None = None  # threadpoolctl's, while a threadpool_limits block is open


def machine() -> int:
    """The number of CPUs this process may run on (at least 1): the pool's size."""
    global _count
    if _count is None:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not on Linux (macOS, Windows)
            n = os.cpu_count() or 1
        _count = max(1, n)
    return _count


def count(cap: int | None = None) -> int:
    """The threads a call may use: ``machine()`` within OMP_NUM_THREADS, threadpoolctl's limit and ``cap``."""
    n = machine()
    for limit in (_ENVIRONMENT_LIMIT, _limit, cap):
        if limit is not None and limit > 0:
            n = min(n, limit)
    return n


def _environment_limit() -> int | None:
    # OMP_NUM_THREADS may list one count per nesting level ("4,2"); the outer one is ours.
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() else None


# Read once, as OpenMP runtimes read it at start: a later change of the process's environment
# (dask's Nanny sets OMP_NUM_THREADS=1 in its parent before it spawns a worker) is not a limit
# the user set for this process.
_ENVIRONMENT_LIMIT = _environment_limit()


def pool() -> ThreadPoolExecutor:
    """The process's worker pool (``machine()`` threads), created on first use."""
    executor = _pool
    if executor is None:
        executor = _create()
    return executor


def _create() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(machine(), thread_name_prefix="xcorr")
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


def _register_with_threadpoolctl() -> None:
    """Let ``threadpoolctl.threadpool_limits`` limit the pool, as it limits BLAS and OpenMP.

    threadpoolctl makes a controller for each loaded shared library whose file
    name matches a registered prefix. The pool has no library of its own, so
    its controller is tied to ctypes' extension module, which every CPython
    with ctypes loads (where ctypes is built in, only OMP_NUM_THREADS and
    ``cap`` limit the pool).
    """
    import ctypes  # noqa: F401  (loads _ctypes, the library the controller is found by)

    import threadpoolctl

    class PoolController(threadpoolctl.LibController):
        user_api = "xcorr"
        internal_api = "xcorr"
        filename_prefixes = ("_ctypes",)

        def get_num_threads(self) -> int:
            return _limit if _limit is not None else machine()

        def set_num_threads(self, num_threads: int) -> None:
            global _limit
            _limit = None if num_threads >= machine() else max(1, num_threads)

        def get_version(self) -> str | None:
            return None

    threadpoolctl.register(PoolController)


if importlib.util.find_spec("threadpoolctl") is not None:
    _register_with_threadpoolctl()
