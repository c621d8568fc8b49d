"""Reliability (issue 15): no hang, no crash, no silently wrong answer.

Each test is one of the issue's reproducers. Concurrency on first use, fork
and read-only installs run in fresh subprocesses (with timeouts: a
regression hangs rather than fails), so that the state under test (a
handler not yet registered, a pool not yet made) is really fresh.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xcorr

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, *, timeout: float = 240, env: dict | None = None, cwd=None) -> str:
    """Run ``script`` in a fresh interpreter; its stdout, or a failure with its output."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=env,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"timed out after {timeout} s (a hang):\n{err.stdout}\n{err.stderr}")
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


# A parent waits for a forked child with a deadline and kills it on a hang,
# so that no hung child outlives the test.
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


# --- 1. concurrent first use on jax ------------------------------------------


def test_jax_concurrent_first_use_registers_each_handler_once():
    """Four threads making their first corr2d_vjp on jax at once: no duplicate FFI registration."""
    pytest.importorskip("jax")
    pytest.importorskip("numba")
    out = _run(
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


# --- 2. fork after use -------------------------------------------------------


def test_numpy_fork_after_threaded_call_does_not_hang():
    _run(
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
    pytest.importorskip("torch")
    _run(
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
    pytest.importorskip("torch")
    _run(
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


def test_thread_count_comes_from_the_machine():
    from xcorr.backends import _threads

    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _threads.machine() == expected
    assert _threads.pool()._max_workers == expected
    assert _threads.count(cap=1) == 1  # a library's own limit (tests/test_threads.py: the user's limits)
    assert _threads.pool() is _threads.pool()


# --- 3. read-only install without a writable cache -----------------------------


def _installed_copy(site: Path) -> None:
    """The package as a non-editable install lays it out: xcorr/ with backends/ inside."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "xcorr", site / "xcorr", ignore=ignore)
    shutil.copytree(ROOT / "backends", site / "xcorr" / "backends", ignore=ignore)


def _read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable_again(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_", "PYTHON"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def test_read_only_install_without_a_writable_cache(tmp_path):
    """A read-only site-packages, HOME unusable, no NUMBA_CACHE_DIR: the numba paths compile in memory."""
    pytest.importorskip("numba")
    pytest.importorskip("jax")
    site = tmp_path / "site"
    _installed_copy(site)
    # Nothing can be written: the package directories are read-only, and
    # (as the tests may run as root, for whom permissions do not apply) the
    # __pycache__ directories numba would use are files; HOME is a file too.
    for package in (site / "xcorr", site / "xcorr" / "backends"):
        (package / "__pycache__").write_text("")
    home = tmp_path / "home"
    home.write_text("")
    _read_only(site)
    try:
        _run(
            """
            import numpy as np
            import xcorr
            assert xcorr.__file__.startswith(SITE), xcorr.__file__

            rng = np.random.default_rng(0)
            x = rng.standard_normal((256, 256)).astype(np.float32)
            k = rng.standard_normal((3, 3)).astype(np.float32)
            y = xcorr.corr2d(x, k, mode="same")
            yd = xcorr.corr2d(x, k, mode="same", method="fft")
            np.testing.assert_allclose(y, yd, rtol=1e-4, atol=1e-4)
            gx, gk = xcorr.corr2d_vjp(x, k, np.ones_like(y), mode="same")

            from xcorr.backends import _numba_cache, _numba_kernels
            assert not _numba_cache.CACHE and _numba_cache.DIRECTORY is None
            assert _numba_kernels.corr.signatures, "the numba kernel did not run"

            import jax
            import jax.numpy as jnp
            yj = xcorr.corr2d(jnp.asarray(x), jnp.asarray(k), mode="same")
            np.testing.assert_allclose(np.asarray(yj), y, rtol=1e-5, atol=1e-5)
            from xcorr.backends import _jax_numba
            assert "xcorr_correlate_float32" in _jax_numba._COMPILED
            """.replace("SITE", repr(str(site))),
            env=_clean_env(HOME=str(home), PYTHONPATH=str(site)),
            cwd=tmp_path,
            timeout=400,
        )
    finally:
        _writable_again(site)


@pytest.mark.slow
def test_numba_cache_recompiles_when_the_kernel_source_changes(tmp_path):
    """The jax custom-call handlers inline _numba_kernels: an edit there must not load stale handlers."""
    pytest.importorskip("numba")
    pytest.importorskip("jax")
    site = tmp_path / "site"
    _installed_copy(site)
    cache = tmp_path / "cache"
    script = """
        import numpy as np, jax.numpy as jnp, xcorr
        x = np.ones((256, 256), np.float32)
        from xcorr.backends import _numba_cache
        print(_numba_cache.DIRECTORY)
        # columns leave x into the fill: numba's kernel as an XLA custom call (two taps per pass: taps2)
        print(float(xcorr.corr2d(jnp.asarray(x), jnp.ones((1, 2), jnp.float32), mode="full")[5, 5]))
    """
    env = _clean_env(NUMBA_CACHE_DIR=str(cache), PYTHONPATH=str(site))
    first = _run(script, env=env, cwd=tmp_path, timeout=400).split()
    assert first[1] == "2.0" and first[0].startswith(str(cache))
    assert any(Path(first[0]).iterdir()), "nothing was cached"
    # A changed kernel: the first pass of two taps doubled (in _numba_kernels only).
    kernels = site / "xcorr" / "backends" / "_numba_kernels.py"
    source = kernels.read_text()
    changed = source.replace("o[j] = k0 * x0[j] + k1 * x1[j]\n", "o[j] = 2 * (k0 * x0[j] + k1 * x1[j])\n", 1)
    assert changed != source
    kernels.write_text(changed)
    second = _run(script, env=env, cwd=tmp_path, timeout=400).split()
    assert second[0] != first[0]
    assert second[1] == "4.0", "the handler came from the stale cache"


# --- 4. torch thread-local state in the workers --------------------------------


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad"])
def test_torch_modes_carried_into_worker_threads(mode):
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    x, k = torch.randn(1024, 1024, generator=gen), torch.randn(3, 3, generator=gen)
    expected = xcorr.corr2d(x.double(), k.double())
    with getattr(torch, mode)():
        y = xcorr.corr2d(x, k)
        ys = xcorr.corr2d(x, k, mode="same")
    assert y.dtype == torch.float32 and not y.requires_grad
    assert torch.allclose(y.double(), expected, atol=1e-4)
    assert ys.shape == x.shape
    if mode == "inference_mode":
        assert y.is_inference()


# --- 10. fillvalue out of the dtype's range ------------------------------------


@pytest.mark.parametrize(("dtype", "fillvalue", "bounds"), [("int32", 1e10, "[-2147483648, 2147483647]"), ("uint8", -1, "[0, 255]")])
def test_fillvalue_out_of_an_integer_range_is_refused(backend, dtype, fillvalue, bounds):
    xp = backend.xp
    if not hasattr(xp, dtype):
        pytest.skip(f"{backend} has no {dtype}")
    x = backend.asarray(np.ones((4, 5)), dtype=dtype)
    k = backend.asarray(np.ones((2, 2)), dtype=dtype)
    with pytest.raises(ValueError, match=rf"fillvalue {fillvalue!r} is out of the range .*{dtype}.*{bounds}".replace("[", r"\[").replace("]", r"\]")):
        xcorr.corr2d(x, k, mode="full", fillvalue=fillvalue)


def test_fillvalue_beyond_a_float_range_rounds_as_ieee(backend):
    x = backend.asarray(np.ones((3, 3)), dtype="float32")
    k = backend.asarray(np.ones((1, 1)), dtype="float32")
    k2 = backend.asarray(np.asarray([[1.0, 0.0]]), dtype="float32")
    for fillvalue, edge in ((1e300, math.inf), (-1e300, -math.inf), (3.4028235e38 * (1 + 1e-9), float(np.finfo(np.float32).max))):
        y = backend.to_numpy(xcorr.corr2d(x, k, mode="same", fillvalue=fillvalue))
        np.testing.assert_array_equal(y, np.ones((3, 3), np.float32))  # a 1x1 kernel reads no fill
        with np.errstate(invalid="ignore"):  # the last column's fill * 0 is NaN for an infinite fill
            y = backend.to_numpy(xcorr.corr2d(x, k2, mode="full", fillvalue=fillvalue))
        np.testing.assert_array_equal(y[:, 0], [edge] * 3)  # the fill, as the dtype holds it
        np.testing.assert_array_equal(y[:, 1:3], np.ones((3, 2), np.float32))
        np.testing.assert_array_equal(y[:, 3], [math.nan if math.isinf(edge) else 1.0] * 3)


# --- 11. numpy masked arrays ----------------------------------------------------


def test_masked_arrays_are_refused_with_how_to_fill_them():
    x = np.ma.masked_array(np.ones((4, 4)), mask=np.eye(4, dtype=bool))
    with pytest.raises(TypeError, match=r"x is a numpy masked array .*x\.filled\(0\)"):
        xcorr.corr2d(x, np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"k is a numpy masked array"):
        xcorr.corr2d(np.ones((4, 4)), np.ma.masked_array(np.ones((2, 2))))
    filled = np.where(np.eye(4, dtype=bool), 0.0, 1.0)
    np.testing.assert_array_equal(xcorr.corr2d(x.filled(0), np.ones((2, 2))), xcorr.corr2d(filled, np.ones((2, 2))))


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


# --- 13. fit and seed validation -------------------------------------------------


@pytest.mark.parametrize("lr", [math.inf, -math.inf, math.nan, np.float64(np.nan)])
def test_fit_refuses_a_non_finite_learning_rate(lr):
    layer = xcorr.Conv2D(3, backend="numpy")
    x = np.ones((6, 6))
    with pytest.raises(ValueError, match=r"lr must be a positive number; got .*(inf|nan)"):
        xcorr.fit(layer, x, layer(x), lr=lr, steps=2)


def test_fit_takes_numpy_scalars_as_the_learning_rate():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 8))
    y = rng.standard_normal((6, 6))
    _, losses32 = xcorr.fit(xcorr.Conv2D(3, backend="numpy", seed=1), x, y, lr=np.float32(0.01), steps=3)
    _, losses = xcorr.fit(xcorr.Conv2D(3, backend="numpy", seed=1), x, y, lr=float(np.float32(0.01)), steps=3)
    assert losses32 == losses and losses[-1] < losses[0]


def test_negative_seed_error_names_seed():
    with pytest.raises(ValueError, match=r"seed must be a non-negative int .*got -1"):
        xcorr.Conv2D(3, seed=-1)


# --- 5. non-finite kernels: IEEE arithmetic on the extended input -----------------


def _input_gradient_reference(x, k, g, mode):
    """``gx``: the products of the forward's terms, ``g[i, j] * k[a, b]``, summed onto the extended
    input position they read, on x's positions (issue 25: no fill or zero outside ``g`` meets the
    kernel, as in the autodiff of ``F.conv2d`` and ``lax.conv_general_dilated``)."""
    from xcorr._options import Options, plan

    geometry = plan(x.shape, k.shape, Options(mode=mode))
    rows, cols = g.shape
    ge = np.zeros((rows + k.shape[0] - 1, cols + k.shape[1] - 1))  # the gradient of the extended input
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            ge[a : a + rows, b : b + cols] += g * k[a, b]
    r0, c0 = -geometry.rows.lo, -geometry.cols.lo
    return ge[r0 : r0 + x.shape[0], c0 : c0 + x.shape[1]]


NON_FINITE_CASES = [
    ((1, 1), [[math.inf, 1.0]]),  # the reproducer: [[nan, inf]] in "full"
    ((5, 6), [[1.0, math.inf, 2.0], [math.nan, 1.0, -math.inf]]),
    ((6, 5), [[-math.inf, 1.0], [2.0, 3.0]]),
    ((150, 130), [[1.0, math.inf, 2.0], [3.0, 1.0, -math.inf]]),  # numba's kernels and custom calls
]


@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize(("shape", "kernel"), NON_FINITE_CASES, ids=lambda v: str(v) if isinstance(v, tuple) else "k")
def test_non_finite_kernels_follow_ieee_on_the_extended_input(backend, mode, shape, kernel):
    from reference import reference

    with np.errstate(invalid="ignore"):  # numpy warns of its 0 * inf (numpy's arrays under xcorr too)
        _check_non_finite(backend, mode, shape, kernel, reference)


def _check_non_finite(backend, mode, shape, kernel, reference):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    k = np.asarray(kernel)
    expected = reference(x, k, mode=mode)
    if mode == "full":
        assert np.isnan(expected).any()  # the fill's 0 * inf is part of the answer
    g = np.abs(rng.standard_normal(expected.shape)) + 0.5  # no 0 * inf inside g itself
    gx_expected = _input_gradient_reference(x, k, g, mode)
    for method in ("auto", "direct"):
        y = backend.to_numpy(xcorr.corr2d(backend.asarray(x), backend.asarray(k), mode=mode, method=method))
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=f"{method} forward")
        gx, _ = xcorr.corr2d_vjp(backend.asarray(x), backend.asarray(k), backend.asarray(g), mode=mode, method=method)
        np.testing.assert_allclose(
            backend.to_numpy(gx), gx_expected, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=f"{method} input gradient"
        )


# --- 12. dtypes a backend has few kernels for ---------------------------------------


@pytest.mark.parametrize("dtype", ["uint16", "uint32", "uint64"])
@pytest.mark.parametrize("mode", ["valid", "full"])
def test_torch_wide_unsigned_dtypes_compute_as_numpy_does(dtype, mode):
    """torch's uint16/32/64 (no add/mul kernels) give numpy's modular results, in their own dtype."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    top = np.iinfo(dtype).max
    x = rng.integers(0, top, (40, 50), dtype=dtype, endpoint=True)
    k = rng.integers(0, top, (3, 4), dtype=dtype, endpoint=True)
    fill = int(top) - 3
    expected = xcorr.corr2d(x, k, mode=mode, fillvalue=fill)  # wraps modulo 2**bits
    y = xcorr.corr2d(torch.from_numpy(x), torch.from_numpy(k), mode=mode, fillvalue=fill)
    assert y.dtype == getattr(torch, dtype)
    np.testing.assert_array_equal(y.numpy(), expected)
    small = np.arange(12, dtype=dtype).reshape(3, 4)
    np.testing.assert_array_equal(
        xcorr.conv2d(torch.from_numpy(small), torch.from_numpy(small[:2, :2]), mode="same").numpy(),
        xcorr.conv2d(small, small[:2, :2], mode="same"),
    )


def test_torch_unpromotable_dtypes_are_a_named_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"torch.uint32 and torch.int32 have no common result dtype"):
        xcorr.corr2d(torch.ones(3, 3, dtype=torch.uint32), torch.ones(2, 2, dtype=torch.int32))
    y = xcorr.corr2d(torch.ones(3, 3, dtype=torch.uint16), torch.ones(2, 2, dtype=torch.float32))
    assert y.dtype == torch.float32 and torch.equal(y, torch.full((2, 2), 4.0))


# --- 15. jax.export of the default method ---------------------------------------------


def test_jax_export_of_the_default_method_takes_xla_ops(monkeypatch):
    """Exported code gets XLA's own ops where a jitted call takes numba's custom calls (same numbers)."""
    jax = pytest.importorskip("jax")
    pytest.importorskip("numba")
    import jax.numpy as jnp
    from jax import export

    from xcorr.backends import _jax_numba

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((200, 150)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((3, 3)), jnp.float32)

    def loss(x, k):
        return (xcorr.corr2d(x, k, mode="same") ** 2).sum()

    forward = jax.jit(lambda x, k: xcorr.corr2d(x, k, mode="same"))
    gradients = jax.jit(jax.grad(loss, argnums=(0, 1)))
    batched = jax.jit(jax.vmap(lambda x: xcorr.corr2d(x, k, mode="full")))
    xs = jnp.stack([x, 2 * x])
    for function, args in ((forward, (x, k)), (gradients, (x, k)), (batched, (xs,))):
        # jitted: numba's kernels as custom calls (this is what export used to refuse)
        assert "custom_call" in function.lower(*args).as_text()
        exported = export.export(function)(*args)
        assert "custom_call" not in exported.mlir_module()
        want, got = jax.tree.leaves(function(*args)), jax.tree.leaves(exported.call(*args))
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-5 * float(jnp.abs(b).max()))
    assert "xcorr_correlate_float32" in _jax_numba._COMPILED


# --- 8. huge dilation costs the output, not the dilated span ---------------------------


def _by_taps(x, k, *, mode, boundary, fillvalue, dilation, stride=1):
    """The correlation tap by tap, reading the extension by index arithmetic (never built)."""
    from xcorr._options import Options, plan

    geometry = plan(x.shape, k.shape, Options.parse(mode=mode, dilation=dilation, stride=stride))

    def source(position, size):
        # (index, inside): where an extended position reads x, or outside (the fill)
        if 0 <= position < size:
            return position, True
        if boundary == "fill":
            return 0, False
        if boundary == "wrap":
            return position % size, True
        m = position % (2 * size)  # symm: the edge repeated, period 2 * size
        return (m if m < size else 2 * size - 1 - m), True

    rows, cols = geometry.rows, geometry.cols
    y = np.zeros((rows.count, cols.count))
    for i in range(rows.count):
        for j in range(cols.count):
            total = 0.0
            for a in range(k.shape[0]):
                r, r_in = source(rows.lo + i * rows.step + a * rows.dilation, x.shape[0])
                for b in range(k.shape[1]):
                    c, c_in = source(cols.lo + j * cols.step + b * cols.dilation, x.shape[1])
                    total += k[a, b] * (x[r, c] if r_in and c_in else fillvalue)
            y[i, j] = total
    return y


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@pytest.mark.parametrize(("mode", "dilation", "stride"), [("same", 10**6, 1), ("same", (10**6, 3 * 10**6 + 1), (2, 3)), ("same", (1, 10**6), 2)])
def test_huge_dilation_costs_the_output_not_the_span(backend, boundary, mode, dilation, stride):
    """dilation=10**6 on a 9x11 image: a materialised extension would take terabytes."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 11))
    k = rng.standard_normal((3, 2))
    fill = 0.5 if boundary == "fill" else 0
    options = {"mode": mode, "boundary": boundary, "fillvalue": fill, "dilation": dilation, "stride": stride}
    expected = _by_taps(x, k, **options)
    y = backend.to_numpy(xcorr.corr2d(backend.asarray(x), backend.asarray(k), method="direct", **options))
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    y = backend.to_numpy(xcorr.corr2d(backend.asarray(x), backend.asarray(k), **options))  # "auto" stays direct
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_huge_dilation_on_dask_is_a_small_graph():
    da = pytest.importorskip("dask.array")
    x = da.from_array(np.ones((9, 11)), chunks=(5, 6))
    y = xcorr.corr2d(x, da.ones((3, 2), chunks=(3, 2)), mode="same", dilation=10**6, fillvalue=2.0)
    assert len(y.__dask_graph__()) < 200
    np.testing.assert_array_equal(y.compute(), np.full((9, 11), 6 * 2.0))  # every tap reads the fill


def test_huge_dilation_in_the_multi_channel_forward():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 11))
    w = rng.standard_normal((4, 3, 3, 2))
    y = xcorr.corr2d_multi(x, w, mode="same", boundary="wrap", dilation=10**6)
    expected = np.stack(
        [
            sum(_by_taps(x[n, c], w[o, c], mode="same", boundary="wrap", fillvalue=0, dilation=10**6) for c in range(3))
            for n in range(2)
            for o in range(4)
        ]
    ).reshape(2, 4, 9, 11)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


# --- 14. TorchScript: a clear error, never a silently wrong trace -------------------------


@pytest.mark.parametrize("channels", [False, True], ids=["single-plane", "channels"])
def test_torchscript_is_refused_with_a_clear_error(channels):
    torch = pytest.importorskip("torch")
    import io
    import warnings

    if channels:
        layer = xcorr.Conv2D(3, in_channels=2, out_channels=4, backend="torch")
        x = torch.randn(2, 2, 8, 8)
    else:
        layer = xcorr.Conv2D(3, backend="torch")
        x = torch.randn(8, 8)
    eager = layer(x)
    match = r"xcorr does not support TorchScript .*torch\.compile"
    with warnings.catch_warnings():
        # TorchScript's own deprecation notices, and the tracer's warnings about
        # the shape checks that run before the refusal of a plain corr2d call
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with pytest.raises(RuntimeError, match=match):
            torch.jit.trace(layer, (x,))
        with pytest.raises(RuntimeError, match=match):
            torch.jit.script(layer)
        with pytest.raises(RuntimeError, match=match):
            torch.onnx.export(layer, (x,), io.BytesIO(), dynamo=False)
        with pytest.raises(RuntimeError, match=match):
            torch.jit.trace(lambda x: xcorr.corr2d(x, torch.ones(3, 3)), (torch.randn(8, 8),))
    assert torch.equal(layer(x), eager)  # the layer still works eagerly
