"""xcorr's build backend: setuptools', with editable installs that type checkers can read.

``pyproject.toml`` maps ``backends/`` to ``xcorr.backends`` (``package-dir``), a layout
that setuptools' default ("lenient") editable install serves with an import hook only,
which mypy, pyright and other static tools cannot run: after ``pip install -e .`` they
did not find xcorr (issue 22). Here an editable install is setuptools' lenient one plus
a plain ``.pth`` path to the tree of links to the checkout's files that setuptools'
"strict" mode makes under ``build/``, which type checkers (and Python, outside the
checkout) read like an installed package. Edits show at once; a module added since the
install is found by the import hook. An explicit ``--config-settings editable_mode=...``
gets setuptools' mode alone. Everything else is setuptools' ``build_meta`` unchanged
(``python -m build`` makes the same sdist and wheel).
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - the PEP 517 hooks, passed through

__all__ = _setuptools.__all__


def build_editable(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    settings = dict(config_settings or {})
    if "editable-mode" in settings or "editable_mode" in settings:
        return _setuptools.build_editable(wheel_directory, settings, metadata_directory)
    with tempfile.TemporaryDirectory() as tmp:
        # The strict build makes the link tree; its wheel holds only the .pth naming it.
        strict = _setuptools.build_editable(tmp, {**settings, "editable_mode": "strict"}, metadata_directory)
        with zipfile.ZipFile(Path(tmp, strict)) as wheel:
            (pth,) = [n for n in wheel.namelist() if n.endswith(".pth")]
            tree = wheel.read(pth)
    name = _setuptools.build_editable(wheel_directory, settings, metadata_directory)
    _add_file(Path(wheel_directory, name), pth.removesuffix(".pth") + ".links.pth", tree)
    return name


def _add_file(wheel_path: Path, arcname: str, data: bytes) -> None:
    """Add ``arcname`` to the wheel and its RECORD."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    with zipfile.ZipFile(wheel_path) as wheel:
        entries = [(info, wheel.read(info)) for info in wheel.infolist()]
    with zipfile.ZipFile(wheel_path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for info, content in entries:
            if info.filename.endswith(".dist-info/RECORD"):
                content += f"{arcname},sha256={digest},{len(data)}\n".encode()
                wheel.writestr(arcname, data)
            wheel.writestr(info, content)
