"""Links to numpy, scipy, torch, jax and dask: every reference resolves, online or offline.

The docs link other projects' names through ``sphinx.ext.intersphinx`` (``docs/conf.py``). A
build with network access reads each project's published inventory; an offline build (CI) reads
the fallback in ``docs/_inventories/``. These checks keep the two builds making the same links:
each fallback is a well-formed inventory, and every external name that a page or a docstring
references is listed in it with the role it is referenced by.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
INVENTORIES = DOCS / "_inventories"

# a role of a page (MyST: {func}`name`) or a docstring (reST: :func:`name`), and the inventory
# types each may resolve to
ROLE = re.compile(r"[{:](func|class|meth|mod)[}:]`~?([A-Za-z_][\w.]*)`")
ROLE_TYPES = {"func": {"function", "method"}, "class": {"class"}, "meth": {"method"}, "mod": {"mod"}}


def _linked_projects() -> dict[str, str]:
    """The ``_LINKED`` table of docs/conf.py, read without importing the configuration."""
    tree = ast.parse((DOCS / "conf.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_LINKED" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError("docs/conf.py has no _LINKED table of linked projects")


def _inventory(project: str) -> dict[str, str]:
    """name -> type of a version-1 inventory, checking its format line by line."""
    lines = (INVENTORIES / f"{project}.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Sphinx inventory version 1", project
    assert lines[1].startswith("# Project: ") and lines[2].startswith("# Version: "), project
    entries: dict[str, str] = {}
    for line in lines[3:]:
        name, kind, page = line.split()
        assert name.split(".")[0] == project, f"{project}.txt lists {name}"
        assert kind in {"class", "function", "method", "attribute", "data", "mod"}, line
        assert "://" not in page and page.endswith(".html"), line
        assert name not in entries, f"{project}.txt lists {name} twice"
        entries[name] = kind
    return entries


def _references() -> list[tuple[str, str, str]]:
    """(where, role, name) of every role that names a linked project, in pages and docstrings."""
    linked = set(_linked_projects())
    found = []
    sources = [*DOCS.rglob("*.md"), *(ROOT / "xcorr").rglob("*.py"), *(ROOT / "backends").rglob("*.py")]
    for path in sources:
        if "_build" in path.parts:
            continue
        for role, name in ROLE.findall(path.read_text(encoding="utf-8")):
            if name.split(".")[0] in linked:
                found.append((str(path.relative_to(ROOT)), role, name))
    return found


def test_each_linked_project_has_a_fallback_inventory_and_a_published_one():
    linked = _linked_projects()
    assert set(linked) == {p.stem for p in INVENTORIES.glob("*.txt")}
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    # the published inventory first (None: the project's objects.inv), then the fallback
    assert '(url, (None, str(DOCS / "_inventories" / f"{name}.txt")))' in conf
    assert "sphinx.ext.intersphinx" in conf
    for url in linked.values():
        assert url.startswith("https://") and url.endswith("/"), url


@pytest.mark.parametrize("project", sorted(_linked_projects()))
def test_fallback_inventory_is_well_formed(project):
    assert _inventory(project)


def test_every_external_reference_is_in_its_inventory():
    missing = []
    for where, role, name in _references():
        entries = _inventory(name.split(".")[0])
        if entries.get(name) not in ROLE_TYPES[role]:
            missing.append(f"{where}: :{role}:`{name}` (inventory: {entries.get(name)})")
    assert not missing, "add these to docs/_inventories/:\n" + "\n".join(missing)


def test_every_linked_project_is_referenced():
    referenced = {name.split(".")[0] for _, _, name in _references()}
    assert referenced == set(_linked_projects())


def test_reference_pattern_reads_both_syntaxes():
    text = "{func}`scipy.signal.correlate2d` and :class:`~torch.nn.Conv2d`, ``jax.jit``"
    assert ROLE.findall(text) == [("func", "scipy.signal.correlate2d"), ("class", "torch.nn.Conv2d")]
