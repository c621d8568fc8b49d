"""Independent float64 reference: the seed notebook's double loop, generalised.

Deliberately naive and written without any of xcorr's code: numpy.pad for the
boundary, explicit zero insertion for dilation, a Python loop over output
pixels. Slow; only for the small shapes of the tests.
"""

from __future__ import annotations

import numpy as np

_NUMPY_PAD_MODE = {"fill": "constant", "wrap": "wrap", "symm": "symmetric", "reflect": "reflect", "edge": "edge"}
_ALIASES = {
    "pad": "fill",
    "constant": "fill",
    "zeros": "fill",
    "circular": "wrap",
    "grid-wrap": "wrap",
    "symmetric": "symm",
    "grid-mirror": "symm",
    "mirror": "reflect",
    "replicate": "edge",
    "nearest": "edge",
}


def random(shape, dtype="float64", seed=0):
    """Reproducible test data: small integers for integer dtypes, else standard normal."""
    rng = np.random.default_rng(seed)
    if dtype.startswith("int"):
        return rng.integers(-9, 10, size=shape).astype(dtype)
    a = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def seed_corr2d(X, K):
    """The seed's corr2d, verbatim in numpy (float64)."""
    h, w = K.shape
    Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=np.result_type(X, K, np.float64))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def dilate(k, dilation):
    dh, dw = dilation
    h, w = k.shape
    out = np.zeros((dh * (h - 1) + 1, dw * (w - 1) + 1), dtype=k.dtype)
    out[::dh, ::dw] = k
    return out


def _pair(v):
    return (v, v) if np.isscalar(v) else (v[0], v[-1])


def padding_pairs(padding, size, extent, stride):
    """``((top, bottom), (left, right))`` of a ``padding=`` argument, from its definition.

    An int or ``(ph, pw)`` pads both sides; "SAME" is TensorFlow's rule
    (``out = ceil(n / s)``, total ``max((out - 1) * s + extent - n, 0)``, the
    larger half after), "SAME_LOWER" the larger half before, "VALID" none.
    """
    if isinstance(padding, str):
        name = padding.upper()
        if name == "VALID":
            return ((0, 0), (0, 0))
        pairs = []
        for n, e, s in zip(size, extent, _pair(stride)):
            out = int(np.ceil(n / s))
            total = max((out - 1) * s + e - n, 0)
            before = total // 2 if name == "SAME" else total - total // 2
            pairs.append((before, total - before))
        return tuple(pairs)
    if np.isscalar(padding):
        return ((padding, padding), (padding, padding))
    return tuple((p, p) if np.isscalar(p) else (p[0], p[1]) for p in padding)


def reference_2d(
    x, k, *, mode="valid", boundary="fill", fillvalue=0, stride=1, dilation=1, convolve=False, padding=None
):
    """One 2-D image and kernel, computed in float64 (complex128 for complex).

    ``padding``: np.pad by that much with ``boundary``, then the valid correlation.
    """
    dtype = np.complex128 if np.iscomplexobj(x) or np.iscomplexobj(k) else np.float64
    x = np.asarray(x, dtype=dtype)
    k = dilate(np.asarray(k, dtype=dtype), _pair(dilation))
    if convolve:
        k = k[::-1, ::-1]
    boundary = _ALIASES.get(boundary, boundary)
    H, W = x.shape
    eh, ew = k.shape
    if padding is not None:
        pad = padding_pairs(padding, (H, W), (eh, ew), stride)
    else:
        pad = ((eh - 1, eh - 1), (ew - 1, ew - 1))
    if boundary == "fill":
        xp_ = np.pad(x, pad, mode="constant", constant_values=fillvalue)
    else:
        xp_ = np.pad(x, pad, mode=_NUMPY_PAD_MODE[boundary])
    full = seed_corr2d(xp_, k)
    if padding is not None or mode == "full":
        dense = full
    elif mode == "valid":
        dense = full[eh - 1 : H, ew - 1 : W]
    else:
        oh = (eh - 1) // 2 if convolve else eh // 2
        ow = (ew - 1) // 2 if convolve else ew // 2
        dense = full[oh : oh + H, ow : ow + W]
    sh, sw = _pair(stride)
    return dense[::sh, ::sw]


def reference(x, k, **options):
    """Batched reference: leading dimensions of x and k broadcast."""
    x = np.asarray(x)
    k = np.asarray(k)
    batch = np.broadcast_shapes(x.shape[:-2], k.shape[:-2])
    xb = np.broadcast_to(x, batch + x.shape[-2:])
    kb = np.broadcast_to(k, batch + k.shape[-2:])
    outs = [reference_2d(xb[i], kb[i], **options) for i in np.ndindex(batch)]
    return np.stack(outs).reshape(batch + outs[0].shape)


# ---------------------------------------------------------------------------
# Vectorised float64 reference and VJP, for the sizes where the fast paths run
# ---------------------------------------------------------------------------
#
# The same definition as ``reference`` (np.pad for every boundary, the dilated
# and possibly flipped kernel, the "full" result cropped to the mode, then
# strided), but one shift-and-add over the kernel taps on whole (batched)
# arrays instead of a Python loop over output pixels. It shares no code with
# xcorr. tests/test_reference.py checks it against ``reference`` and the VJP
# against finite differences.


def _geometry(x_shape, k_shape, *, mode, dilation, convolve, padding=None, stride=1):
    """``(pad, full, crop)``: per-axis ``(before, after)`` padding, the extent of the valid correlation
    of the padded image and the ``(start, length)`` of the mode within it."""
    dilation = _pair(dilation)
    extents = [d * (taps - 1) + 1 for taps, d in zip(k_shape[-2:], dilation)]
    if padding is not None:
        pairs = padding_pairs(padding, x_shape[-2:], extents, stride)
        fulls = [n + lo + hi - e + 1 for n, (lo, hi), e in zip(x_shape[-2:], pairs, extents)]
        return list(pairs), fulls, [(0, f) for f in fulls]
    pads, fulls, crops = [], [], []
    for n, taps, d in zip(x_shape[-2:], k_shape[-2:], dilation):
        extent = d * (taps - 1) + 1
        full = n + extent - 1
        if mode == "full":
            crop = (0, full)
        elif mode == "valid":
            crop = (extent - 1, n - extent + 1)
        else:
            crop = ((extent - 1) // 2 if convolve else extent // 2, n)
        pads.append((extent - 1, extent - 1))
        fulls.append(full)
        crops.append(crop)
    return pads, fulls, crops


def _pad(x, pads, boundary, fillvalue):
    width = [(0, 0)] * (x.ndim - 2) + list(pads)
    boundary = _ALIASES.get(boundary, boundary)
    if boundary == "fill":
        return np.pad(x, width, mode="constant", constant_values=fillvalue)
    return np.pad(x, width, mode=_NUMPY_PAD_MODE[boundary])


def _wide(*arrays):
    return np.complex128 if any(np.iscomplexobj(a) for a in arrays) else np.float64


def fast_reference(
    x, k, *, mode="valid", boundary="fill", fillvalue=0, stride=1, dilation=1, convolve=False, padding=None
):
    """``reference`` for any batch shape and size: np.pad, then one shift-and-add per kernel tap."""
    dtype = _wide(x, k)
    x, k = np.asarray(x, dtype=dtype), np.asarray(k, dtype=dtype)
    if convolve:
        k = k[..., ::-1, ::-1]
    (dh, dw), (sh, sw) = _pair(dilation), _pair(stride)
    pads, (fh, fw), ((r0, nr), (c0, nc)) = _geometry(
        x.shape, k.shape, mode=mode, dilation=dilation, convolve=convolve, padding=padding, stride=stride
    )
    xe = _pad(x, pads, boundary, fillvalue)
    # Only the rows and columns of "full" that the mode keeps, every stride-th.
    rows = slice(r0, r0 + nr, sh)
    cols = slice(c0, c0 + nc, sw)
    batch = np.broadcast_shapes(x.shape[:-2], k.shape[:-2])
    out = np.zeros((*batch, len(range(fh)[rows]), len(range(fw)[cols])), dtype=dtype)
    for a in range(k.shape[-2]):
        for b in range(k.shape[-1]):
            window = xe[..., a * dh : a * dh + fh, b * dw : b * dw + fw][..., rows, cols]
            out += k[..., a, b, None, None] * window
    return out


def _sum_to(a, shape):
    """Sum ``a`` over the dimensions along which an array of ``shape`` was broadcast."""
    a = a.sum(axis=tuple(range(a.ndim - len(shape)))) if a.ndim > len(shape) else a
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and a.shape[i] != 1)
    return a.sum(axis=axes, keepdims=True) if axes else a


def reference_vjp(
    x, k, g, *, mode="valid", boundary="fill", fillvalue=0, stride=1, dilation=1, convolve=False, padding=None
):
    """``(gx, gk)``: the transpose (no conjugation) of ``fast_reference`` at ``g``, in float64/complex128.

    ``g`` is placed back into the "full" result (zeros at the strided-out and
    cropped positions); the padded image's gradient gets ``k[a, b] * g_full``
    scattered onto every tap's window and the kernel gradient is the sum of
    ``g_full`` times that window. The padding's adjoint adds each padded
    position onto the pixel np.pad copied it from (fill positions are
    dropped), found by padding the pixel indices the same way. Broadcast
    batch dimensions are summed.
    """
    dtype = _wide(x, k, g)
    x, k, g = (np.asarray(a, dtype=dtype) for a in (x, k, g))
    kk = k[..., ::-1, ::-1] if convolve else k
    (dh, dw), (sh, sw) = _pair(dilation), _pair(stride)
    pads, (fh, fw), ((r0, nr), (c0, nc)) = _geometry(
        x.shape, k.shape, mode=mode, dilation=dilation, convolve=convolve, padding=padding, stride=stride
    )
    H, W = x.shape[-2:]
    xe = _pad(x, pads, boundary, fillvalue)
    batch = np.broadcast_shapes(x.shape[:-2], k.shape[:-2])
    g_full = np.zeros((*batch, fh, fw), dtype=dtype)
    g_full[..., r0 : r0 + nr : sh, c0 : c0 + nc : sw] = g
    g_pad = np.zeros((*batch, *xe.shape[-2:]), dtype=dtype)
    gk = np.zeros((*batch, *k.shape[-2:]), dtype=dtype)
    for a in range(k.shape[-2]):
        for b in range(k.shape[-1]):
            window = (..., slice(a * dh, a * dh + fh), slice(b * dw, b * dw + fw))
            g_pad[window] += kk[..., a, b, None, None] * g_full
            gk[..., a, b] = np.sum(g_full * xe[window], axis=(-2, -1))
    # Adjoint of np.pad: where did each padded position come from?
    boundary = _ALIASES.get(boundary, boundary)
    index = np.arange(H * W).reshape(H, W)
    width = list(pads)
    if boundary == "fill":
        source = np.pad(index, width, mode="constant", constant_values=-1)
    else:
        source = np.pad(index, width, mode=_NUMPY_PAD_MODE[boundary])
    kept = source >= 0
    planes = g_pad.reshape(-1, *g_pad.shape[-2:])
    gx = np.zeros((H * W, planes.shape[0]), dtype=dtype)
    np.add.at(gx, source[kept], planes[:, kept].T)
    gx = gx.T.reshape(*batch, H, W)
    if convolve:
        gk = gk[..., ::-1, ::-1]
    return _sum_to(gx, x.shape), _sum_to(gk, k.shape)


def reference_multi(x, w, *, groups=1, **options):
    """Multi-channel correlation from ``fast_reference``: ``y[..., o] = sum_c corr(x[..., group(o)*Cg + c], w[o, c])``."""
    o, cg = w.shape[:2]
    per = o // groups
    planes = [
        sum(fast_reference(x[..., (j // per) * cg + c, :, :], w[j, c], **options) for c in range(cg)) for j in range(o)
    ]
    return np.stack(planes, axis=-3)


def reference_multi_vjp(x, w, g, *, groups=1, **options):
    """``(gx, gw)`` of ``reference_multi`` from ``reference_vjp``, channel pair by channel pair."""
    o, cg = w.shape[:2]
    per = o // groups
    gx = np.zeros(x.shape, dtype=_wide(x, w, g))
    gw = np.zeros(w.shape, dtype=gx.dtype)
    for j in range(o):
        for c in range(cg):
            channel = (j // per) * cg + c
            a, b = reference_vjp(x[..., channel, :, :], w[j, c], g[..., j, :, :], **options)
            gx[..., channel, :, :] += a
            gw[j, c] += b
    return gx, gw
