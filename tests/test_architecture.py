"""The shape of the code: what imports what (read with ``ast``, nothing imported)."""

from __future__ import annotations

import ast
import pathlib

import xcorr

XCORR = pathlib.Path(xcorr.__file__).parent
BACKENDS = XCORR.parent / "backends"


def _imports(path: pathlib.Path):
    """``(line, module)`` of every import in ``path``, with relative imports as written (``..toolkit``)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.module is None:
                for alias in node.names:
                    yield node.lineno, base + alias.name
            else:
                yield node.lineno, base


def test_backends_import_xcorr_only_through_the_toolkit():
    # An adapter reaches the core through xcorr.toolkit (the documented API for
    # adapter authors) and its own sibling modules, never a private module.
    # A package's modules (backends/jax/) reach the core one level further up.
    offenders = []
    for path in sorted(BACKENDS.rglob("*.py")):
        core = "." * (len(path.relative_to(BACKENDS).parts) + 1)  # xcorr, relative to this module
        for line, module in _imports(path):
            inside = module.startswith(core) or module.split(".")[0] == "xcorr"
            if inside and module not in (core + "toolkit", "xcorr.toolkit"):
                offenders.append(f"{path.relative_to(BACKENDS)}:{line}: {module}")
    assert not offenders, "backends/ reaching past xcorr.toolkit:\n" + "\n".join(offenders)
