"""Where numba caches the compiled kernels of ``_numba_kernels``, ``_jax_numba`` and ``_numba_backward``, if anywhere.

Two things numba's own cache does not do for us:

* **Dependent sources.** numba keys a cached function on its own file only.
  The XLA handlers of ``_jax_numba.py`` inline ``_numba_kernels.corr`` and
  ``kgrad``: after an edit of ``_numba_kernels.py`` (or an upgrade that
  changes it) numba would load the old handlers (and ``_numba_backward``'s
  fused pass, which calls ``corr`` and ``kgrad``, its old pass). Here every cached function
  of these files lives in a directory named after a hash of their sources
  and numba's version (``xcorr-<hash>``), and that hash is their source
  stamp: any change to one of them compiles everything afresh.
* **No writable location.** In a read-only install (a system
  site-packages, a container image) without a writable ``HOME`` or
  ``NUMBA_CACHE_DIR``, ``cache=True`` raises "cannot cache function ...: no
  locator available". Caching only saves compile time, so ``CACHE`` is
  False there: the kernels compile in memory, once per process.

The directory is the first writable one of ``NUMBA_CACHE_DIR``, the
package's own ``__pycache__`` (numba's default) and ``$XDG_CACHE_HOME/xcorr``
(``~/.cache/xcorr``). The locator is registered with numba's cache
machinery (``numba.core.caching``, not a public API): where that is not
possible either, nothing is cached.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numba

HERE = Path(__file__).resolve().parent
# The files whose functions are cached together, and keyed on all of them.
SOURCES = ("_numba_kernels.py", "_jax_numba.py", "_numba_backward.py")


def _sources_hash() -> str:
    digest = hashlib.sha256(numba.__version__.encode())
    for name in SOURCES:
        digest.update(name.encode())
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _candidates():
    from numba.core import config

    if config.CACHE_DIR:
        yield Path(config.CACHE_DIR)
    yield HERE / "__pycache__"
    xdg = os.environ.get("XDG_CACHE_HOME")
    try:
        yield Path(xdg) / "xcorr" if xdg else Path.home() / ".cache" / "xcorr"
    except RuntimeError:  # no home directory to be found
        return


def _install() -> Path | None:
    """Register the locator and return the cache directory, or None where nothing can be cached."""
    try:
        from numba.core import caching, config
    except ImportError:
        return None
    base = getattr(caching, "_CacheLocator", None)
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)  # numba >= 0.57 / older
    if base is None or not isinstance(getattr(impl, "_locator_classes", None), list):
        return None
    if getattr(config, "CACHE_LOCATOR_CLASSES", None):  # the user chose numba's locators (numba >= 0.62): ours would not be asked
        return None
    stamp = _sources_hash()
    directory = next((d / f"xcorr-{stamp}" for d in _candidates() if _writable(d / f"xcorr-{stamp}")), None)
    if directory is None:
        return None
    files = {str(HERE / name) for name in SOURCES}

    class Locator(base):
        """Our kernels' cache: ``directory``, stamped with the hash of all their sources."""

        def __init__(self, py_func):
            self._lineno = py_func.__code__.co_firstlineno

        def ensure_cache_path(self):
            os.makedirs(directory, exist_ok=True)

        def get_cache_path(self):
            return str(directory)

        def get_source_stamp(self):
            return stamp

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            if str(Path(py_file).resolve()) not in files:
                return None  # someone else's function: numba's own locators
            return cls(py_func)

    impl._locator_classes.insert(0, Locator)
    return directory


# The cache directory of this process, or None: then CACHE is False and
# nothing is read from or written to disk.
DIRECTORY = _install()
CACHE = DIRECTORY is not None
