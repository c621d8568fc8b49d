"""The worker threads: the pool obeys the thread limits a user sets (OMP_NUM_THREADS, threadpoolctl,
torch and numba), is sized by the machine, survives fork and DataLoader workers, carries torch's
thread-local modes, and first calls from many threads at once race on nothing.

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

import xcorr

from matrix import require_module, run_python

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


# -- first use from several threads at once ----------------------------------------------------


def test_jax_concurrent_first_use_registers_each_handler_once():
    """Four threads making their first corr2d_vjp on jax at once: no duplicate FFI registration."""
    require_module("jax")
    require_module("numba")
    out = run_python(
        """
        import threading
        import jax, jax.numpy as jnp, numpy as np
        import xcorr

        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((512, 512)), dtype=jnp.float32)
        k = jnp.asarray(rng.standard_normal((3, 3)), dtype=jnp.float32)
        g = jnp.asarray(rng.standard_normal((510, 510)), dtype=jnp.float32)
        start = threading.Barrier(4)
        results, errors = [None] * 4, []

        def first_call(i):
            start.wait()
            try:
                gx, gk = xcorr.corr2d_vjp(x, k, g)
                y = xcorr.corr2d(x, k, mode="same")
                results[i] = (np.asarray(gx), np.asarray(gk), np.asarray(y))
            except BaseException as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=first_call, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for r in results[1:]:
            for a, b in zip(r, results[0]):
                np.testing.assert_array_equal(a, b)
        from xcorr.backends import _jax_numba
        print(sorted(_jax_numba._COMPILED))
        """
    )
    # Both kernels went through the custom calls (so the test exercised the registration).
    assert "xcorr_kernel_gradient_float32" in out
    assert "xcorr_correlate_float32" in out


FIRST_CALLS_FROM_THREADS = """
import sys, threading, time
import numpy as np
import xcorr

assert "numpy.ma" not in sys.modules, "this check needs numpy.ma imported by the first call"
errors, barrier = [], threading.Barrier(32)

def first_call(i):
    barrier.wait()
    time.sleep(i * 0.008)  # staggered over the first call's imports: some reach the guard while numpy.ma loads
    try:
        y = xcorr.corr2d(np.ones((6, 6)), np.ones((2, 2)))
        assert (y == 4).all()
    except Exception as err:
        errors.append(repr(err))

threads = [threading.Thread(target=first_call, args=(i,)) for i in range(32)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit("; ".join(errors))
"""


def test_first_numpy_calls_from_threads_race_no_masked_array_import():
    """32 threads making their first numpy call at staggered times, in 20 fresh processes: the masked-array
    guard read numpy.ma while the first call's array_api_compat import was initialising it
    ("partially initialized module 'numpy.ma'", in most processes)."""
    failures = []
    for _ in range(4):  # 20 processes, 5 at a time
        procs = [
            subprocess.Popen([sys.executable, "-c", FIRST_CALLS_FROM_THREADS], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(5)
        ]
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                failures.append(f"timed out (a hang): {err[-2000:]}")
                continue
            if proc.returncode != 0:
                failures.append(err[-2000:])
    assert not failures, f"{len(failures)} of 20 processes failed:\n" + "\n".join(failures)


# -- fork after use: a parent waits for a forked child with a deadline and kills it on a hang ---


FORK_HELPERS = """
import os, signal, sys, time

def wait_child(pid, deadline=120):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    sys.exit("the forked child hung")

def in_child(call):
    pid = os.fork()
    if pid == 0:
        try:
            call()
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    assert wait_child(pid) == 0, "the child failed"
"""


def test_numpy_fork_after_threaded_call_does_not_hang():
    run_python(
        FORK_HELPERS
        + """
import numpy as np
import xcorr

x = np.ones((2048, 2048), np.float16)
k = np.ones((3, 3), np.float16)
y = xcorr.corr2d(x, k)  # the thread pool is running in the parent

def child():
    assert (xcorr.corr2d(x, k) == y).all()
    # numba's row chunks go through the same pool
    assert float(xcorr.corr2d(x.astype(np.float32), k.astype(np.float32))[0, 0]) == 9.0

in_child(child)
assert (xcorr.corr2d(x, k) == y).all()  # and the parent's pool still works
"""
    )


def test_torch_fork_after_threaded_call_does_not_hang():
    require_module("torch")
    run_python(
        FORK_HELPERS
        + """
import torch
import xcorr

x, k = torch.ones(1024, 1024), torch.ones(3, 3)
y = xcorr.corr2d(x, k).numpy()

def child():
    # Compared in numpy: torch's own OpenMP ops hang in a forked child once
    # the parent has used them (torch's limitation, not xcorr's; a
    # DataLoader sets torch.set_num_threads(1) in its workers for this).
    assert (xcorr.corr2d(x, k).numpy() == y).all()

in_child(child)
assert (xcorr.corr2d(x, k).numpy() == y).all()
"""
    )


def test_torch_dataloader_workers_after_an_xcorr_call():
    require_module("torch")
    run_python(
        """
        import torch
        from torch.utils.data import DataLoader, Dataset
        import xcorr

        class Images(Dataset):
            def __len__(self):
                return 4

            def __getitem__(self, i):
                return xcorr.corr2d(torch.full((1024, 1024), float(i)), torch.ones(3, 3)).sum()

        xcorr.corr2d(torch.ones(1024, 1024), torch.ones(3, 3))  # the pool is running
        loader = DataLoader(Images(), batch_size=2, num_workers=2, timeout=120)
        total = torch.cat([batch for batch in loader])
        expected = torch.tensor([9.0 * i * 1022 * 1022 for i in range(4)])
        assert torch.allclose(total, expected), total
        """
    )


# -- the pool's size, and torch's thread-local state in the workers ----------------------------


def test_thread_count_comes_from_the_machine():
    from xcorr.backends import _threads

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _threads.machine() == expected
    assert _threads.pool()._max_workers == expected
    assert _threads.count(cap=1) == 1  # a library's own limit (tests/test_threads.py: the user's limits)
    assert _threads.pool() is _threads.pool()


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_torch_modes_carried_into_worker_threads(mode):
    torch = require_module("torch")
    gen = torch.Generator().manual_seed(0)
    x, k = torch.randn(1024, 1024, generator=gen), torch.randn(3, 3, generator=gen)
    expected = torch.nn.functional.conv2d(x.double()[None, None], k.double()[None, None])[0, 0]
    with getattr(torch, mode)():
        y = xcorr.corr2d(x, k)
        ys = xcorr.corr2d(x, k, mode="same")
    assert y.dtype == torch.float32 and not y.requires_grad
    assert torch.allclose(y.double(), expected, atol=1e-4)
    assert ys.shape == x.shape
    if mode == "inference_mode":
        assert y.is_inference()
