"""Channels-last inputs: ``data_format="channels_last"`` (``(N, H, W, C)``) of the multi-channel calls.

The channels-first computation is the reference. A channels-last array is
handed to it as a permuted view (``permute_dims``): numpy and dask make no
copy, and a torch view of an ``(N, H, W, C)`` tensor permuted to ``(N, C, H,
W)`` has the ``torch.channels_last`` memory format, which ``F.conv2d`` and
``F.conv_transpose2d`` compute on directly (their result keeps that format,
so permuting it back gives a contiguous ``(N, H', W', C)`` tensor). jax
convolves in ``NHWC`` itself (``lax.conv_general_dilated`` dimension
numbers), through ``Adapter.correlate_multi_channels_last``.

Kernels keep their layouts in both formats: ``(C_out, C_in // groups, h, w)``
for ``corr2d_multi`` and ``Conv2D`` (torch's ``OIHW``), ``(C_in, C_out //
groups, h, w)`` for ``conv_transpose2d`` and ``Conv2DTranspose`` (torch's),
so weights copied from torch work unchanged in either format.
"""

from __future__ import annotations

from ._options import check_arrays

__all__ = ["DATA_FORMATS", "parse_data_format", "to_first", "to_last"]

DATA_FORMATS: tuple[str, ...] = ("channels_first", "channels_last")


def parse_data_format(data_format: object) -> bool:
    """Whether ``data_format`` is "channels_last" (ValueError for anything but the two names)."""
    if not isinstance(data_format, str) or data_format not in DATA_FORMATS:
        msg = (
            f"data_format must be one of {', '.join(map(repr, DATA_FORMATS))} "
            f"((N, C, H, W) or (N, H, W, C)); got {data_format!r}"
        )
        raise ValueError(msg)
    return data_format == "channels_last"


def to_first(xp, a):
    """``(N, H, W, C)`` or ``(H, W, C)`` as a permuted ``(N, C, H, W)`` / ``(C, H, W)`` view."""
    axes = (0, 3, 1, 2) if a.ndim == 4 else (2, 0, 1)
    return xp.permute_dims(a, axes)


def to_last(xp, a):
    """The inverse of :func:`to_first`."""
    axes = (0, 2, 3, 1) if a.ndim == 4 else (1, 2, 0)
    return xp.permute_dims(a, axes)


def check_last(
    x, w, *, x_name: str = "x", w_name: str = "w", channels: int | None = None
):
    """Check a channels-last ``x`` before it is permuted (messages in its own layout)."""
    xp = check_arrays(x, w, x_name=x_name, k_name=w_name)
    check_last_shape(x, w, x_name=x_name, w_name=w_name, channels=channels)
    return xp


def check_last_shape(x, w, *, x_name: str = "x", w_name: str = "w", channels: int | None = None) -> None:
    """:func:`check_last` of checked operands: the shape of a channels-last ``x``."""
    if x.ndim not in (3, 4):
        msg = (
            f'{x_name} must have shape (N, H, W, C) or (H, W, C) with data_format="channels_last"; '
            f"got shape {tuple(x.shape)}"
        )
        raise ValueError(msg)
    if channels is not None and x.shape[-1] != channels:
        msg = (
            f"{x_name} has {x.shape[-1]} channels in its last axis (shape {tuple(x.shape)}, data_format="
            f'"channels_last") but {w_name} of shape {tuple(w.shape)} expects {channels}'
        )
        raise ValueError(msg)
