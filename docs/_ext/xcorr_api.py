"""The API reference lists every name of ``xcorr.__all__``, generated at build time.

The page ``api.md`` holds the marker ``{xcorr-api}`` in a comment line; on
``source-read`` it is replaced by one section per group, each a summary table
and the autodoc entries of its names. A name added to ``xcorr.__all__`` shows
up without editing the page: it joins the group its name or kind says
(``GROUPS`` lists the known names; ``group_of`` places new ones).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

MARKER = "<!-- {xcorr-api} -->"
KERAS_MODULE = Path(__file__).resolve().parents[2] / "xcorr" / "keras.py"

# (title, introduction, known names in the order shown)
GROUPS: list[tuple[str, str, list[str]]] = [
    (
        "Correlation and convolution",
        "Functions of arrays: any array-API library in, the same library and device out.",
        ["corr2d", "conv2d", "corr2d_multi", "corr1d", "conv1d", "corr1d_multi"],
    ),
    (
        "Gradients",
        (
            "Exact vector-Jacobian products in array-API code; the torch and jax adapters use them "
            "for their autodiff rules, and on the other libraries they are the gradients."
        ),
        ["corr2d_vjp", "conv2d_vjp", "corr2d_multi_vjp", "corr1d_vjp", "conv1d_vjp", "corr1d_multi_vjp"],
    ),
    (
        "Layers and training",
        (
            "``Conv2D(..., backend=...)`` returns a ``torch.nn.Module`` on torch, a pytree on jax and a "
            "plain object of arrays elsewhere; ``fit`` is the seed notebook's training loop."
        ),
        ["Conv2D", "Conv1D", "Conv3D", "Conv1DTranspose", "Conv3DTranspose", "fit"],
    ),
    (
        "Receptive fields and feature maps",
        (
            "Closed-form receptive fields of layer stacks, the same measured from gradients, and "
            "the outputs of every layer."
        ),
        [
            "Window",
            "receptive_field",
            "ReceptiveField",
            "empirical_receptive_field",
            "EmpiricalField",
            "feature_maps",
        ],
    ),
    (
        "Extending: adapters",
        (
            "Everything that differs between array libraries is one method of ``Adapter``; "
            "a library xcorr does not ship registers its own."
        ),
        [
            "Adapter",
            "Tuning",
            "Costs",
            "adapter_for",
            "register_adapter",
            "unregister_adapter",
        ],
    ),
    ("More", "Public names not placed in a group above.", []),
]


def group_of(name: str, obj: object) -> str:
    """The group of a public name: its listed group, else one its name and kind suggest."""
    for title, _, names in GROUPS:
        if name in names:
            return title
    lowered = name.lower()
    if inspect.ismodule(obj) and "init" in lowered:
        return "Layers and training"
    if lowered.endswith(("_vjp", "_jvp")):
        return "Gradients"
    if inspect.isclass(obj) and ("conv" in lowered or "layer" in lowered):
        return "Layers and training"
    if (
        callable(obj)
        and not inspect.isclass(obj)
        and ("corr" in lowered or "conv" in lowered)
    ):
        return "Correlation and convolution"
    if "adapter" in lowered:
        return "Extending: adapters"
    if "receptive" in lowered or "window" in lowered:
        return "Receptive fields and feature maps"
    return "More"


def grouped(module) -> list[tuple[str, str, list[str]]]:
    """``GROUPS`` filled with ``module.__all__``: listed names first, in order, then new ones sorted."""
    public = list(module.__all__)
    placed: dict[str, list[str]] = {title: [] for title, _, _ in GROUPS}
    for title, _, names in GROUPS:
        placed[title].extend(n for n in names if n in public)
    listed = {n for _, _, names in GROUPS for n in names}
    for name in sorted(n for n in public if n not in listed):
        placed[group_of(name, getattr(module, name))].append(name)
    return [
        (title, intro, placed[title]) for title, intro, _ in GROUPS if placed[title]
    ]


def render(module) -> str:
    """The MyST text of the API reference of ``module`` (``xcorr``)."""
    out: list[str] = []
    for title, intro, names in grouped(module):
        out += [f"## {title}", "", intro, "", "```{eval-rst}", ".. autosummary::", ""]
        out += [f"   {module.__name__}.{name}" for name in names]
        out += ["```", ""]
        # autodoc writes reStructuredText, so its directives go in eval-rst blocks (under MyST's
        # own directive syntax, its output would be read as Markdown)
        out += ["```{eval-rst}"]
        for name in names:
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                out += [f".. automodule:: {obj.__name__}", "   :members:", ""]
            elif inspect.isclass(obj):
                out += [f".. autoclass:: {module.__name__}.{name}", "   :members:", ""]
            else:
                out += [f".. autofunction:: {module.__name__}.{name}", ""]
        out += ["```", ""]
    return "\n".join(out)


def keras_names() -> list[str]:
    """``xcorr.keras.__all__``, read from its source (importing it would import Keras)."""
    tree = ast.parse(KERAS_MODULE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            return list(ast.literal_eval(node.value))
    raise LookupError(f"{KERAS_MODULE} has no __all__")


def render_keras() -> str:
    """The section of ``xcorr.keras``: Keras 3 layers (``conf.py`` sets ``KERAS_BACKEND`` for autodoc)."""
    names = keras_names()
    out = [
        "## Keras layers",
        "",
        "``xcorr.keras`` (the ``keras`` extra) holds Keras 3 layers that take the arguments of Keras' "
        "layers of the same names and compute them with xcorr; ``import xcorr.keras`` registers them "
        "for Keras serialization.",
        "",
        "```{eval-rst}",
        ".. autosummary::",
        "",
        *(f"   xcorr.keras.{name}" for name in names),
        "```",
        "",
        "```{eval-rst}",
    ]
    # no :members: here: the layers' methods are Keras' (build, call, get_config), whose docstrings
    # autodoc would inherit
    for name in names:
        out += [f".. autoclass:: xcorr.keras.{name}", ""]
    out += ["```", ""]
    return "\n".join(out)


def _source_read(app, docname: str, source: list[str]) -> None:
    if MARKER in source[0]:
        import xcorr

        source[0] = source[0].replace(MARKER, render(xcorr) + "\n" + render_keras())


def setup(app):
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
