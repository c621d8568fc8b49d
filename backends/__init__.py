"""Per-framework adapters, installed as ``xcorr.backends``.

One module per array library, each imported only when arrays of that
library reach xcorr. A module may define:

``correlate(xp, x, k, options, geometry)``
    A native or differentiable implementation of the validated correlation;
    return ``NotImplemented`` to fall back to the generic array-API code.
"""
