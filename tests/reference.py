"""Independent float64 reference: the seed notebook's double loop, generalised.

Deliberately naive and written without any of xcorr's code: numpy.pad for the
boundary, explicit zero insertion for dilation, a Python loop over output
pixels. Slow; only for the small shapes of the tests.
"""

from __future__ import annotations

import numpy as np

_NUMPY_PAD_MODE = {"fill": "constant", "wrap": "wrap", "symm": "symmetric"}
_ALIASES = {"pad": "fill", "circular": "wrap", "symmetric": "symm"}


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


def reference_2d(x, k, *, mode="valid", boundary="fill", fillvalue=0, stride=1, dilation=1, convolve=False):
    """One 2-D image and kernel, computed in float64 (complex128 for complex)."""
    dtype = np.complex128 if np.iscomplexobj(x) or np.iscomplexobj(k) else np.float64
    x = np.asarray(x, dtype=dtype)
    k = dilate(np.asarray(k, dtype=dtype), _pair(dilation))
    if convolve:
        k = k[::-1, ::-1]
    boundary = _ALIASES.get(boundary, boundary)
    H, W = x.shape
    eh, ew = k.shape
    pad = ((eh - 1, eh - 1), (ew - 1, ew - 1))
    if boundary == "fill":
        xp_ = np.pad(x, pad, mode="constant", constant_values=fillvalue)
    else:
        xp_ = np.pad(x, pad, mode=_NUMPY_PAD_MODE[boundary])
    full = seed_corr2d(xp_, k)
    if mode == "full":
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
