"""The worker pool obeys the thread limits a user sets: OMP_NUM_THREADS, threadpoolctl, torch and numba.

Each case runs a large correlation in a fresh process (so that the environment and the first
call's set-up are the case's own) and counts the pool threads that took part in it: the caller
always works, and a call that may use ``n`` threads hands work to ``n - 1`` pool threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from matrix import require_module

SCRIPT = textwrap.dedent(
    """
    import json, sys, threading
    import numpy as np
    import xcorr
    from xcorr.backends import _threads

    library, limit = sys.argv[1], sys.argv[2]
    xcorr.corr2d(np.ones((4, 4)), np.ones((2, 2)))  # loads the adapter (and its pool's registration)
    helpers = set()
    executor = _threads.pool()
    submit = executor.submit

    def counting_submit(fn, *args, **kwargs):
        def run(*a, **k):
            helpers.add(threading.get_ident())
            return fn(*a, **k)
        return submit(run, *args, **kwargs)

    executor.submit = counting_submit
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((1024, 1024)), rng.standard_normal((5, 5))
    if library == "torch":
        import torch
        torch.set_num_threads(int(limit))
        xt, kt = torch.from_numpy(x), torch.from_numpy(k)
        y = xcorr.corr2d(xt, kt).numpy()
        xt.requires_grad_(True)
        xcorr.corr2d(xt, kt).sum().backward()  # the threaded kernel gradient's bands
        after = None
    elif library == "numba":
        import numba
        numba.set_num_threads(int(limit))
        y = xcorr.corr2d(x, k, method="direct")
        after = None
    elif library == "threadpoolctl":
        from threadpoolctl import threadpool_limits
        with threadpool_limits(int(limit)):
            y = xcorr.corr2d(x, k)
        after = _threads.count()
    else:
        y = xcorr.corr2d(x, k)
        after = None
    expected = sum(k[a, b] * x[a : a + 1020, b : b + 1020] for a in range(5) for b in range(5))
    print(json.dumps({"helpers": len(helpers), "machine": _threads.machine(), "after": after,
                      "exact": bool(np.allclose(y, expected, rtol=1e-12, atol=1e-12))}))
    """
)


def pool_helpers(library: str, limit: str = "0", **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, library, limit], env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_without_limits_every_cpu_works():
    got = pool_helpers("none")
    if got["machine"] < 2:
        pytest.skip(f"this process may run on {got['machine']} CPU: no pool thread to count")
    assert got["exact"] and got["helpers"] == got["machine"] - 1, got


def test_omp_num_threads_limits_the_pool():
    got = pool_helpers("none", OMP_NUM_THREADS="1")
    assert got["exact"] and got["helpers"] == 0, got


def test_threadpoolctl_limits_the_pool_inside_its_block_only():
    require_module("threadpoolctl")
    got = pool_helpers("threadpoolctl", "1")
    assert got["exact"] and got["helpers"] == 0, got
    assert got["after"] == got["machine"], got  # the limit ends with the block


def test_torch_set_num_threads_limits_the_pool_on_torch_tensors():
    require_module("torch")
    got = pool_helpers("torch", "1")
    assert got["exact"] and got["helpers"] == 0, got


def test_numba_set_num_threads_limits_its_paths():
    require_module("numba")
    got = pool_helpers("numba", "1")
    assert got["exact"] and got["helpers"] == 0, got
