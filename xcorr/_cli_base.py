"""What the commands share: backend names and their devices, errors for the user, progress bars."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _registry

# -- backends -------------------------------------------------------------------

# Backend names: the adapter registry's libraries, and "<library>_gpu" (or
# "<library>_cuda") for a library's GPU device.
GPU_SUFFIXES = ("_gpu", "_cuda")


class CommandError(Exception):
    """A problem the user can fix (missing extra, unreadable file): printed without a traceback."""


@contextmanager
def reading(what: str, not_a: str, malformed: tuple[type[Exception], ...]) -> Iterator[None]:
    """A missing, unreadable or malformed file (``malformed`` errors) as one line naming ``what``;
    a CommandError raised while reading passes through."""
    try:
        yield
    except CommandError:
        raise
    except FileNotFoundError:
        msg = f"{what} does not exist"
        raise CommandError(msg) from None
    except PermissionError as err:
        msg = f"{what} cannot be read: {err.strerror}"
        raise CommandError(msg) from None
    except malformed as err:
        msg = f"{what} is not {not_a}: {err}"
        raise CommandError(msg) from None


@dataclass(frozen=True)
class Backend:
    """How the CLI moves NumPy data onto one array library (and device) and back."""

    name: str  # as the user wrote it: "torch", "torch_cuda", "jax_gpu", ...
    library: str  # the registry name: "torch", "jax", ...
    adapter: Any
    device: Any  # a device of the library, or None for its default

    def asarray(self, a: np.ndarray):
        return self.adapter.from_numpy(a, device=self.device)

    def to_numpy(self, y) -> np.ndarray:
        return self.adapter.to_numpy(y)


def load_backend(name: str) -> Backend:
    library, kind = _registry.resolve_name(name), "cpu"
    for suffix in GPU_SUFFIXES:
        if library.endswith(suffix):
            library, kind = library.removesuffix(suffix), "gpu"
    if library not in _registry.known_names():
        names = ", ".join(_registry.known_names())
        msg = f"unknown backend {name!r}; choose one of {names}, or NAME_gpu for a GPU device"
        raise CommandError(msg)
    try:
        _registry.import_library(library)
    except _registry.MissingLibrary as err:
        hint = f": {err.pip}" if err.pip else ""
        msg = f"backend {name!r} needs {err.module.split('.')[0]}, which is not installed ({err.cause}){hint}"
        raise CommandError(msg) from None
    adapter = _registry.adapter_named(library)
    try:
        device = adapter.device(kind)
    except LookupError as err:
        msg = f"backend {name!r} needs a GPU device: {err}"
        raise CommandError(msg) from None
    return Backend(name, library, adapter, device)


def _require(module: str, purpose: str, extra: str):
    """Import an optional dependency, or explain which extra installs it."""
    package = {"PIL": "pillow"}.get(module.split(".")[0], module.split(".")[0])
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"{purpose} needs {package}, which is not installed: pip install 'xcorr[{extra}]'"
        raise CommandError(msg) from None


# -- progress -------------------------------------------------------------------------

# A bar appears only once a run has lasted this long, so short runs print nothing.
PROGRESS_DELAY_S = 0.5


def progress(total: int, *, unit: str, desc: str, quiet: bool):
    """A tqdm bar on stderr: hidden with ``--quiet``, when stderr is not a terminal, and for short runs."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        desc=desc,
        file=sys.stderr,
        disable=True if quiet else None,  # None: tqdm disables itself when the file is not a TTY
        delay=PROGRESS_DELAY_S,
        leave=False,
        dynamic_ncols=True,
    )


def _show(a: np.ndarray) -> str:
    with np.printoptions(precision=4, suppress=False):
        return np.array2string(np.asarray(a))
