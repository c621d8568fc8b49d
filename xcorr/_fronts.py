"""What the 1-D and 3-D fronts over the 2-D functions share: the broadcast batch, the output
gradient's check and the docstring template (each front fills in its own design paragraph and
options)."""

from __future__ import annotations

from ._options import check_arrays


def broadcast_batch(x_shape, k_shape, core: int) -> tuple[int, ...]:
    """The broadcast of the batch dimensions of ``x`` and ``k`` (all but their last ``core``)."""
    a, b = tuple(x_shape[:-core]), tuple(k_shape[:-core])
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    if any(p != q and 1 not in (p, q) for p, q in zip(a, b)):
        msg = (
            f"batch dimensions of x {tuple(x_shape[:-core])} and k {tuple(k_shape[:-core])} do not broadcast "
            f"(x has shape {tuple(x_shape)}, k has shape {tuple(k_shape)})"
        )
        raise ValueError(msg)
    return tuple(max(p, q) for p, q in zip(a, b))


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
