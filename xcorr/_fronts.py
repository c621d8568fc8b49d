"""What the 1-D and 3-D fronts over the 2-D functions share: the output
gradient's check and the docstring template (each front fills in its own design paragraph and
options)."""

from __future__ import annotations

from ._options import check_arrays


def check_g(x, g, out: tuple[int, ...], layout: str = "") -> None:
    """A VJP's output gradient ``g``: of ``x``'s library and device, and the output's shape ``out``."""
    check_arrays(x, g, k_name="g", x_checked=True)
    if tuple(g.shape) != out:
        raise ValueError(f"g must have the shape of the output, {out}{layout}; got shape {tuple(g.shape)}")


def front_doc(title: str, formula: str, design: str, body: str, options: str, returns: str) -> str:
    """A front's docstring: title, formula, how the 2-D function computes it, parameters, returns."""
    return f"""{title}

    {formula}

    {design}

    Parameters
    ----------
{body}
{options}

    Returns
    -------
{returns}"""
