"""The API reference a user reads (issue 22): each public name's docstring has a Parameters section
with one typed entry per parameter where the layers are concerned, and an Examples section; the
Keras layers are on the page. The examples themselves run in tests/test_docs.py and
tests/test_keras.py.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import xcorr

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _section(doc: str, title: str) -> str | None:
    """The body of numpydoc section ``title`` in ``doc`` (None if it has none)."""
    match = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\w[\w ]*\n-{{3,}}\n|\Z)", doc, re.M | re.S)
    return None if match is None else match.group(1)


def _entries(section: str) -> list[tuple[str, str]]:
    """``(names, type)`` of each entry of a Parameters section (``type`` "" when it has none)."""
    return [(m.group(1), m.group(2) or "") for m in re.finditer(r"^(\**\w[\w, ]*?)(?: : (.+))?$", section, re.M)]


def _parameters(obj) -> list[str]:
    params = inspect.signature(obj).parameters.values()
    return [p.name for p in params if p.name not in ("self", "cls")]


@pytest.mark.parametrize("name", xcorr.__all__)
def test_every_public_name_has_parameters_and_examples(name):
    obj = getattr(xcorr, name)
    doc = inspect.getdoc(obj) or ""
    assert _section(doc, "Examples"), f"xcorr.{name} has no Examples section"
    if inspect.ismodule(obj):
        return
    if _parameters(obj):
        assert _section(doc, "Parameters"), f"xcorr.{name} has no Parameters section"


def _check_one_typed_entry_each(name: str, doc: str, parameters: list[str]) -> None:
    section = _section(doc, "Parameters")
    entries = _entries(section)
    assert all("," not in names for names, _ in entries), f"{name}: grouped entries {entries}"
    untyped = [n for n, kind in entries if not kind and not n.startswith("**")]
    assert not untyped, f"{name}: untyped entries {untyped}"
    assert sorted(n for n, _ in entries) == sorted(parameters)
    # each has a description, none repeated word for word (the old page said "As in xcorr.corr2d" five times)
    bodies = [" ".join(b.split()) for b in re.split(r"^\**\w+(?: : .*)?$", section, flags=re.M)[1:]]
    assert all(bodies), f"{name}: an entry without a description"
    assert len(set(bodies)) == len(bodies), f"{name}: repeated descriptions"


@pytest.mark.parametrize("name", ["Conv2D", "Conv2DTranspose", "Conv1D", "Conv3D", "Conv1DTranspose", "Conv3DTranspose"])
def test_layer_parameters_have_one_typed_entry_each(name):
    layer = getattr(xcorr, name)
    _check_one_typed_entry_each(name, inspect.getdoc(layer), _parameters(layer))


@pytest.mark.parametrize(
    "name", ["Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "DepthwiseConv2D"]
)
def test_keras_layer_parameters_have_one_typed_entry_each(name):
    cls = _keras_classes()[name]
    (init,) = [n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    parameters = [a.arg for a in init.args.args[1:]] + [f"**{init.args.kwarg.arg}"]
    _check_one_typed_entry_each(f"xcorr.keras.{name}", inspect.cleandoc(ast.get_docstring(cls)), parameters)


def test_entries_parser_sees_a_grouped_entry():
    assert _entries("x, w\n    The operands.\ng : array\n    Gradient.\n") == [("x, w", ""), ("g", "array")]


def _keras_classes() -> dict[str, ast.ClassDef]:
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in sorted((ROOT / "backends" / "keras").glob("*.py"))]
    return {node.name: node for tree in trees for node in tree.body if isinstance(node, ast.ClassDef)}


def test_keras_layers_are_on_the_api_page_with_examples(xcorr_api):
    names = xcorr_api.keras_names()
    assert names == [
        "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose", "DepthwiseConv2D"
    ]
    text = xcorr_api.render_keras()
    assert re.findall(r"^\.\. autoclass:: xcorr\.keras\.(\w+)$", text, re.M) == names
    classes = _keras_classes()
    for name in names:
        doc = inspect.cleandoc(ast.get_docstring(classes[name]) or "")
        assert _section(doc, "Parameters") and _section(doc, "Examples"), name
    # autodoc imports xcorr.keras: conf.py picks a Keras backend xcorr runs on before anything imports Keras
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert conf.index('os.environ.setdefault("KERAS_BACKEND", "jax")') < conf.index("import xcorr")


@pytest.mark.parametrize(
    "name",
    [
        *("corr1d", "conv1d", "corr1d_vjp", "conv1d_vjp", "corr1d_multi", "corr1d_multi_vjp"),
        *("corr3d", "conv3d", "corr3d_vjp", "conv3d_vjp", "corr3d_multi", "corr3d_multi_vjp"),
        *("corr3d_jvp", "conv3d_jvp", "corr3d_multi_jvp"),
        *("conv_transpose3d", "conv_transpose3d_vjp", "corr3d_transpose", "corr3d_transpose_vjp"),
    ],
)
def test_one_and_three_d_functions_have_one_typed_entry_per_parameter(name):
    function = getattr(xcorr, name)
    _check_one_typed_entry_each(name, inspect.getdoc(function), _parameters(function))
