"""torch's library calls, which every tracer and autograd know: ``F.conv2d``, ``F.conv_transpose2d`` and
``F.pad`` for the multi-channel and the traced correlations; and the TorchScript refusal."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from ... import toolkit
from ...toolkit import result_dtype

TORCHSCRIPT = (
    "xcorr does not support TorchScript (torch.jit.trace, torch.jit.script, or torch.onnx.export with "
    "dynamo=False): its calls choose their path from shapes, options and (on the CPU) the kernel's values "
    "in Python, which a trace would freeze into wrong results for other inputs. Use torch.compile, "
    "torch.export.export or torch.onnx.export(..., dynamo=True), or call the model eagerly"
)


# torch.jit.is_tracing() less its Python frame: torch.compile folds it to None as it folds is_tracing().
_tracing_state = torch._C._get_tracing_state


def refuse_torchscript() -> None:
    """A clear error under the TorchScript tracer, which would record a silently wrong graph."""
    if _tracing_state() is not None:
        raise RuntimeError(TORCHSCRIPT)


def library_applies(xp, x, w) -> bool:
    """Whether torch's convolutions take ``x`` and ``w``: a floating result dtype wider than 16 bits."""
    dtype = _result_dtype(xp, x, w)
    return dtype.is_floating_point and dtype not in (torch.float16, torch.bfloat16)


def _result_dtype(xp, x, w):
    return x.dtype if x.dtype == w.dtype else result_dtype(xp, x.dtype, w.dtype)


def traceable_correlate(xp, x, k, options, geometry):
    """The correlation as ``F.conv2d`` (floating and complex dtypes) or a shift-and-add of
    slices (integers): ops that every torch tracer and autograd know."""
    x, k = toolkit.prepare(xp, x, k, options)
    if not (x.dtype.is_floating_point or x.dtype.is_complex) or x.dtype in (torch.float16, torch.bfloat16):
        return toolkit.direct_correlate(xp, x, k, replace(options, convolve=False), geometry)
    xe, padding = _library_extension(xp, x, options, geometry)
    return conv_planes(xe, k, geometry, padding)


def conv_planes(xe, k, geometry, padding=0):
    """``F.conv2d`` of each plane of ``xe`` with ``k`` (one kernel, or one per plane: a grouped
    convolution over the broadcast batch), cropped to the outputs and broadcast to their shape."""
    rows, cols = geometry.rows, geometry.cols
    conv = torch.nn.functional.conv2d
    stride, dilation = (rows.step, cols.step), (rows.dilation, cols.dilation)
    H, W = xe.shape[-2:]
    h, w = k.shape[-2:]
    if k.ndim == 2:
        y = conv(xe.reshape(-1, 1, H, W), k.reshape(1, 1, h, w), stride=stride, padding=padding, dilation=dilation)
        y = y.reshape(*xe.shape[:-2], *y.shape[-2:])
    else:
        batch = geometry.batch
        planes = math.prod(batch)
        xb = xe.expand(*batch, H, W).reshape(1, planes, H, W)
        kb = k.expand(*batch, h, w).reshape(planes, 1, h, w)
        y = conv(xb, kb, stride=stride, padding=padding, dilation=dilation, groups=planes)
        y = y.reshape(*batch, *y.shape[-2:])
    y = crop(y, rows.count, cols.count)
    if tuple(y.shape) != geometry.out_shape:
        y = y.expand(geometry.out_shape)
    return y


def correlate_multi(xp, x, w, options, geometry, groups, bias=None):
    """``corr2d_multi`` where ``library_applies``: ``F.conv2d`` (a GEMM), the boundary extension handed
    to torch.

    A zero fill no wider after ``x`` than before it is ``F.conv2d``'s own
    ``padding``; other fills and a wrap within one period are ``F.pad``;
    only "symm" (which torch's pad modes do not have) and wider wraps build
    the extension from slices. A ``bias`` goes into ``F.conv2d``, which adds
    it as the GEMM's epilogue (and the graph is ``nn.Conv2d``'s).
    """
    dtype = _result_dtype(xp, x, w)
    if x.dtype != dtype or w.dtype != dtype:
        x, w = x.to(dtype), w.to(dtype)
    if bias is not None and bias.dtype != dtype:
        bias = bias.to(dtype)
    rows, cols = geometry.rows, geometry.cols
    xe, padding = _library_extension(xp, x, options, geometry)
    y = torch.nn.functional.conv2d(
        xe, w, bias, stride=options.stride, padding=padding, dilation=options.dilation, groups=groups
    )
    return crop(y, rows.count, cols.count)


_NATIVE = {1: torch.nn.functional.conv1d, 3: torch.nn.functional.conv3d}


def prepare_multi_native(pads, stride, dilation, groups):
    """``Adapter.prepare_multi_native``: ``F.conv1d`` or ``F.conv3d`` given only the keywords that differ
    from torch's defaults (each costs parsing time per call), a symmetric zero padding as their
    ``padding``, an asymmetric one by ``F.pad`` first (so the graph is ``nn.Conv1d``'s or
    ``nn.Conv3d``'s where the padding is theirs)."""
    conv, n = _NATIVE[len(pads)], len(pads)
    padding, widths = tuple(before for before, _ in pads), None
    if padding != tuple(after for _, after in pads):
        widths, padding = [width for pair in reversed(pads) for width in pair], (0,) * n
    given = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    defaults = {"stride": (1,) * n, "padding": (0,) * n, "dilation": (1,) * n, "groups": 1}
    keywords = {name: value for name, value in given.items() if value != defaults[name]}

    def run(x, w, b):
        if _tracing_state() is not None:
            raise RuntimeError(TORCHSCRIPT)
        return conv(x, w, b, **keywords)

    def run_padded(x, w, b):
        refuse_torchscript()
        return conv(torch.nn.functional.pad(x, widths), w, b, **keywords)

    return run_padded if widths else run


def correlate_multi_transpose(xp, x, w, plan, bias=None):
    """``conv_transpose2d`` where ``library_applies``: ``F.conv_transpose2d``, with torch's padding where
    it is symmetric.

    A channels-last ``x`` goes in as a permuted view (``channels_last``
    memory format), which torch computes on without a copy; its result keeps
    that format, so the permutation back is a contiguous ``(N, H, W, C)``.
    Asymmetric padding crops the uncropped result (slices); a ``bias`` needs
    torch's padding (``plan.symmetric_padding`` not None).
    """
    dtype = _result_dtype(xp, x, w)
    if x.dtype != dtype or w.dtype != dtype:
        x, w = x.to(dtype), w.to(dtype)
    padding = plan.symmetric_padding
    if bias is not None and bias.dtype != dtype:
        bias = bias.to(dtype)
    if plan.channels_last:
        x = toolkit.to_first(xp, x)
    options = plan.options
    if padding is not None:
        y = torch.nn.functional.conv_transpose2d(
            x, w, bias, stride=options.stride, padding=padding, output_padding=plan.output_padding,
            groups=plan.groups, dilation=options.dilation,
        )
    else:
        full = torch.nn.functional.conv_transpose2d(
            x, w, stride=options.stride, groups=plan.groups, dilation=options.dilation
        )
        y = toolkit.transpose_crop(xp, full, plan)
    return toolkit.to_last(xp, y) if plan.channels_last else y


def crop(y, rows: int, cols: int):
    """The first ``rows`` x ``cols`` outputs: no slice (an op and an autograd node) where that is all of ``y``."""
    return y if y.shape[-2:] == (rows, cols) else y[..., :rows, :cols]


def _library_extension(xp, x, options, geometry):
    """``(xe, padding)``: ``F.conv2d(xe, ..., padding=padding)`` reads what the windows read.

    The windows start at row ``rows.lo`` and column ``cols.lo`` of ``x``
    (at most 0); what lies past the last window is only read by outputs
    that are cropped, so a zero fill as wide after ``x`` as before it is
    enough at both ends. Other fills, "wrap" within one period, "reflect"
    narrower than ``x`` (torch's own limit) and "edge" are ``F.pad``'s
    "constant", "circular", "reflect" and "replicate" modes; "symm" (which
    torch's pad modes do not have) and wider extensions are built from slices.
    """
    rows, cols = geometry.rows, geometry.cols
    top, left = -rows.lo, -cols.lo
    bottom, right = max(0, rows.hi - rows.size + 1), max(0, cols.hi - cols.size + 1)
    if not (top or bottom or left or right):
        return x, 0
    pads = (left, right, top, bottom)
    if options.boundary == "fill":
        if options.fillvalue == 0 and bottom <= top and right <= left:
            return x, (top, left)
        return torch.nn.functional.pad(x, pads, value=options.fillvalue), 0
    xe = pad_mode(x, options.boundary, geometry, pads)
    return (toolkit.extend(xp, x, geometry, options) if xe is None else xe), 0


def pad_mode(x, boundary, geometry, pads):
    """``F.pad(x, pads)`` in the mode of ``boundary``, or None where torch has no such pad.

    "wrap" is "circular" up to the size of ``x``, "reflect" is "reflect"
    narrower than ``x`` (torch's limits), "edge" is "replicate"; "symm" has
    no torch mode. The non-circular modes are taken for floating dtypes only.
    """
    rows, cols = geometry.rows, geometry.cols
    left, right, top, bottom = pads
    widest_rows, widest_cols = max(top, bottom), max(left, right)
    mode = {
        "wrap": "circular" if widest_rows <= rows.size and widest_cols <= cols.size else None,
        "reflect": "reflect" if widest_rows < rows.size and widest_cols < cols.size else None,
        "edge": "replicate",
    }.get(boundary)
    if mode is None or not (mode == "circular" or x.dtype.is_floating_point):
        return None
    planes = x.reshape(-1, 1, *x.shape[-2:])  # F.pad's non-constant modes take (N, C, H, W)
    xe = torch.nn.functional.pad(planes, pads, mode=mode)
    return xe.reshape(*x.shape[:-2], *xe.shape[-2:])
