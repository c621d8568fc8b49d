"""An installed copy of the package: read-only without a writable cache, and numba's cache of the
jax custom-call handlers invalidated by an edit of the kernels they inline.

Each case lays the package out as a non-editable install does (``xcorr/`` with ``backends/`` inside)
and runs it in a fresh interpreter whose environment names only that copy.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from matrix import require_module, run_python

ROOT = Path(__file__).resolve().parent.parent


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
    require_module("numba")
    require_module("jax")
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
        run_python(
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
    require_module("numba")
    require_module("jax")
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
    first = run_python(script, env=env, cwd=tmp_path, timeout=400).split()
    assert first[1] == "2.0" and first[0].startswith(str(cache))
    assert any(Path(first[0]).iterdir()), "nothing was cached"
    # A changed kernel: the first pass of two taps doubled (in _numba_kernels only).
    kernels = site / "xcorr" / "backends" / "_numba_kernels.py"
    source = kernels.read_text()
    changed = source.replace("o[j] = k0 * x0[j] + k1 * x1[j]\n", "o[j] = 2 * (k0 * x0[j] + k1 * x1[j])\n", 1)
    assert changed != source
    kernels.write_text(changed)
    second = run_python(script, env=env, cwd=tmp_path, timeout=400).split()
    assert second[0] != first[0]
    assert second[1] == "4.0", "the handler came from the stale cache"
