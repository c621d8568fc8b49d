"""PyTorch adapter: autograd integration and fast forward kernels.

Imported lazily by ``xcorr._dispatch`` the first time a torch tensor reaches
xcorr; ``import xcorr`` never imports torch.
"""

from __future__ import annotations

import torch

from .. import _generic


def correlate(xp, x, k, options, geometry):
    """Validated correlation of torch tensors (the dispatch hook)."""
    if torch.is_grad_enabled() and (x.requires_grad or k.requires_grad):
        return differentiable_correlate(xp, x, k, options, geometry)
    return forward(xp, x, k, options, geometry)


# --- autodiff ------------------------------------------------------------


def differentiable_correlate(xp, x, k, options, geometry):
    """Correlation that records a backward pass for torch autograd."""
    return _generic.correlate(xp, x, k, options, geometry)


# --- fast forward kernels --------------------------------------------------


def forward(xp, x, k, options, geometry):
    """Fastest forward computation for torch tensors (no autograd recorded).

    ``options.method`` is already resolved by ``xcorr._methods``: "fft" goes
    through ``torch.fft`` real transforms, "native" through
    ``torch.nn.functional.conv2d``, "direct" through a row-tiled in-place
    shift-and-add (``add_`` on a preallocated output).
    """
    if options.method == "fft":
        from .. import _fft

        return _fft.correlate(xp, x, k, options, geometry)
    if options.method == "native":
        result = native_forward(xp, x, k, options, geometry)
        if result is not NotImplemented:
            return result
    return direct_forward(xp, x, k, options, geometry)


# Output elements per band of rows in the CPU direct path: the band and the
# input rows it reads stay in L2 while every kernel tap passes over them.
BAND_ELEMENTS = 1 << 18


def direct_forward(xp, x, k, options, geometry):
    """Shift-and-add into one preallocated output with in-place ``add_``.

    Extra memory: the output itself; no term is ever materialised.
    """
    x, k = _generic.prepare(xp, x, k, options)
    xe = _generic.extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    out = torch.empty(geometry.out_shape, dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    col_windows = [_generic.window(cols, b) for b in range(cols.taps)]
    if k.ndim == 2 and x.device.type == "cpu":
        # Python scalars: add_(view, alpha=...) is one fused pass per tap.
        weights = k.tolist()
        taps = [(a, b, weights[a][b]) for a in range(rows.taps) for b in range(cols.taps)]
    else:
        taps = [(a, b, k[..., a : a + 1, b : b + 1]) for a in range(rows.taps) for b in range(cols.taps)]
    if x.device.type == "cpu":
        band = max(1, BAND_ELEMENTS // max(1, out.numel() // rows.count))
    else:
        band = rows.count
    for r0 in range(0, rows.count, band):
        r1 = min(rows.count, r0 + band)
        o = out[..., r0:r1, :]
        first = True
        for a, b, kab in taps:
            lo = r0 * rows.step + a * rows.dilation
            src = xe[..., lo : lo + (r1 - r0 - 1) * rows.step + 1 : rows.step, col_windows[b]]
            if first:
                torch.mul(src, kab, out=o)
                first = False
            elif isinstance(kab, torch.Tensor):
                o.addcmul_(src, kab)
            else:
                o.add_(src, alpha=kab)
    return out


def native_forward(xp, x, k, options, geometry):
    """``torch.nn.functional.conv2d`` on the extended input (valid, strided, dilated)."""
    x, k = _generic.prepare(xp, x, k, options)
    if not (x.dtype.is_floating_point or x.dtype.is_complex) or x.dtype in (torch.float16, torch.bfloat16):
        return NotImplemented
    xe = _generic.extend(xp, x, geometry, options)
    rows, cols = geometry.rows, geometry.cols
    conv = torch.nn.functional.conv2d
    stride, dilation = (rows.step, cols.step), (rows.dilation, cols.dilation)
    H, W = xe.shape[-2:]
    h, w = k.shape[-2:]
    if k.ndim == 2:
        y = conv(xe.reshape(-1, 1, H, W), k.reshape(1, 1, h, w), stride=stride, dilation=dilation)
        y = y.reshape(*xe.shape[:-2], *y.shape[-2:])
    else:
        # One kernel per plane: a grouped convolution over the broadcast batch.
        batch = geometry.batch
        planes = 1
        for n in batch:
            planes *= n
        xb = xe.expand(*batch, H, W).reshape(1, planes, H, W)
        kb = k.expand(*batch, h, w).reshape(planes, 1, h, w)
        y = conv(xb, kb, stride=stride, dilation=dilation, groups=planes)
        y = y.reshape(*batch, *y.shape[-2:])
    y = y[..., : rows.count, : cols.count]
    if tuple(y.shape) != geometry.out_shape:
        y = y.expand(geometry.out_shape)
    return y
