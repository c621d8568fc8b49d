"""Prepared correlations: one signature validated, planned and handed to its adapter once.

A call's array types, shapes, dtypes and options decide its geometry, the
method that "auto" takes, the half-precision widening and what the adapter
prepares (``Adapter.prepare_correlate``); they are kept by signature (up to
1024), so a repeated call checks only what can differ between arrays of one
signature (their devices, and the finiteness an FFT needs) and runs. The
operations that correlate again inside a computation (the input gradient, the
broadcast multi-channel correlation) call :func:`correlate` with the adapter
they were handed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from . import _cost_model
from ._compat import array_namespace
from ._operations import AdapterOperations
from ._options import Call, Options, cast_integers, check_arrays, check_integral_fill, mixes_kinds, plan, result_dtype


def correlate(adapter: AdapterOperations, x, k, options: Options):
    """Correlation of arrays ``x``, ``k`` by ``adapter`` (the prepared call of this signature, made on first use)."""
    try:
        prepared = _PREPARED[(type(x), x.shape, x.dtype, type(k), k.shape, k.dtype, options)]
    except (KeyError, TypeError, AttributeError):
        key = (type(x), x.shape, x.dtype, type(k), k.shape, k.dtype, options)
        # Arrays made inside an operation from checked ones: their namespace, no checks again.
        xp = array_namespace(x, k)
        call = Call(xp, adapter, result_dtype(xp, x.dtype, k.dtype), options, plan(x.shape, k.shape, options))
        return prepare_and_call(call, x, k, key)
    return prepared(x, k)


class Prepared:
    """A correlation of one signature (array types, shapes, dtypes, options), validated once.

    Everything that depends only on the signature (argument checks, the
    geometry, the method "auto" takes, the adapter and what it prepares) is
    done when the signature is first seen; a repeated call checks only what
    can differ between arrays of one signature (their devices, and the
    finiteness an FFT needs) and runs.
    """

    __slots__ = ("adapter", "call", "check_devices", "check_finite", "geometry", "key", "options", "run", "tuning", "xp")  # fmt: skip

    def __init__(self, call: Call, options: Options, run, *, check_finite):
        self.call = call  # the validated call, its options as requested
        self.xp = call.xp
        self.adapter = adapter = call.adapter
        self.tuning = adapter.tuning
        self.options = options
        self.geometry = call.geometry
        self.run = run
        self.check_devices = adapter.devices
        self.check_finite = check_finite
        self.key = None

    def __call__(self, x, k):
        if self.tuning is not self.adapter.tuning:
            # The adapter's tuning was replaced: its choices may differ now.
            check_arrays(x, k)
            return prepare_and_call(self.call, x, k, self.key)
        if self.check_devices and not self.adapter.same_device(x, k):
            check_arrays(x, k)  # raises, naming both devices
        if self.check_finite and not fft_allowed(self.adapter, self.xp, x, k):
            direct = replace(self.options, method="direct")
            return self.adapter.correlate(self.xp, x, k, direct, self.geometry)
        return self.run(x, k)


# Prepared calls by signature: (type, shape, dtype) of x and k, and the Options
# (or, for the public functions, their keyword arguments as given).
# Prepared calls of corr2d/conv2d and of corr2d_multi (PreparedMulti), or their Widened forms.
_PREPARED: dict[tuple, Callable[..., Any]] = {}
_MAX_PREPARED = 1024
_prepared_lock = threading.Lock()


def clear_prepared() -> None:
    """Forget every prepared call (after an adapter or a module-level threshold changed)."""
    with _prepared_lock:
        _PREPARED.clear()


def fft_allowed(adapter: AdapterOperations, xp, *arrays) -> bool:
    """Whether a call for which "auto" picked the FFT may take it: its arrays' values can be read
    (not traced, not wrapped by a transform) and are all finite. A NaN or inf would spread over an
    FFT's whole result; the direct method keeps it where it is, and serves arrays with no values."""
    return adapter.values_visible(*arrays) and all(bool(xp.all(xp.isfinite(a))) for a in arrays)


HALF = ("float16", "bfloat16")


def half_precision(dtype) -> bool:
    """Whether ``dtype`` is float16 or bfloat16 (of any library), which xcorr computes in float32."""
    return str(dtype).rsplit(".", 1)[-1] in HALF


class Widened:
    """A prepared float32 call for half-precision operands: cast up, compute, round once.

    Products and sums of float16/bfloat16 operands are computed in float32
    (every method, so "fft" and "auto" work too) and the result is rounded
    to the half dtype once, as ``torch.nn.functional.conv2d`` and
    ``jax.lax.conv_general_dilated`` return it. Casts are differentiable, so
    autodiff sees the float32 computation between them.
    """

    __slots__ = ("dtype", "inner", "key", "xp")

    def __init__(self, xp, dtype, inner):
        self.xp = xp
        self.dtype = dtype
        self.inner = inner
        self.key = None

    def __call__(self, x, k, *bias):
        # A bias (corr2d_multi's) is added in float32 too, before the one rounding.
        return self.xp.astype(self.inner(*in_wide(self.xp, self.dtype, x, k, *bias)), self.dtype)


class Cast:
    """A prepared call of an integer operand with a floating one: the integer operands (a bias too)
    cast to the floating result dtype once, before the adapter sees them (``cast_integers``), so that
    no library's own promotion decides the result's dtype."""

    __slots__ = ("dtype", "inner", "key", "xp")

    def __init__(self, xp, dtype, inner):
        self.xp = xp
        self.dtype = dtype
        self.inner = inner
        self.key = None

    def __call__(self, x, k, *bias):
        return self.inner(*cast_integers(self.xp, self.dtype, x, k, *bias))


def half_fill(xp, dtype, options: Options) -> Options:
    """``options`` with the fill value as the half dtype ``dtype`` holds it, for a float32 computation.

    A float16 image padded with 70000 holds inf (and with 0.1, 0.0999755859375); the widened
    computation fills with that value, not with the float32 one (a fill of 70000 times a tap of 0.5
    would round to 35008, where inf is right).
    """
    return replace(options, fillvalue=half_value(xp, dtype, options.fillvalue))


def half_vjp(call: Call, vjp: Callable, *arrays):
    """``vjp(call, *arrays)``, a VJP of the validated ``call`` whose last array is the cotangent,
    computed in float32 where the operands and the cotangent are half precision (:func:`in_float32`)."""
    dtype = result_dtype(call.xp, call.dtype, arrays[-1].dtype)
    return in_float32(call, dtype, vjp, *arrays) if half_precision(dtype) else vjp(call, *arrays)


def in_float32(call: Call, dtype, fn: Callable, *arrays):
    """``fn(call, *arrays)`` of a call whose result is the half dtype ``dtype``, computed as the
    forward is (:class:`Widened`): the call and its operands in float32 (None stays None), the fill
    as the half dtype holds it, and each result rounded to ``dtype`` once."""
    xp = call.xp
    wide = replace(call, dtype=xp.float32, options=half_fill(xp, dtype, call.options))
    out = fn(wide, *in_wide(xp, dtype, *arrays))
    if isinstance(out, tuple):
        return tuple(None if a is None else xp.astype(a, dtype) for a in out)
    return xp.astype(out, dtype)


def in_wide(xp, dtype, *arrays):
    """``arrays`` of a call whose result is the half dtype ``dtype`` in float32 (None stays None):
    an integer operand as ``dtype`` holds it first (:func:`cast_integers`), as any operand of the
    call is, so that 2049 in a float16 call is 2048 before the float32 sum."""
    return tuple(None if a is None else xp.astype(a, xp.float32) for a in cast_integers(xp, dtype, *arrays))


def half_value(xp, dtype, value):
    """The scalar ``value`` as the half dtype ``dtype`` holds it (see :func:`half_fill`)."""
    fill = check_integral_fill(xp, dtype, value)  # beyond the range: IEEE rounding, to inf
    if isinstance(fill, (int, float)) and math.isfinite(fill):
        fill = _round_half(float(fill), *_HALF_BITS[str(dtype).rsplit(".", 1)[-1]])
    return fill


# Significand bits (the implicit one included) and smallest normal exponent of the half dtypes.
_HALF_BITS = {"float16": (11, -14), "bfloat16": (8, -126)}


def _round_half(value: float, bits: int, min_exp: int) -> float:
    """``value`` rounded to nearest, ties to even, to ``bits`` significant bits (fewer below the
    smallest normal exponent ``min_exp``, as subnormals have): in Python, with no array (traced
    arrays have no value to read)."""
    if value == 0:
        return value
    m, e = math.frexp(value)  # value = m * 2**e, 0.5 <= |m| < 1: the leading bit has exponent e - 1
    bits -= max(0, min_exp - (e - 1))
    return math.ldexp(round(math.ldexp(m, bits)), e - bits)


def prepare(call: Call, x, k) -> Prepared | Widened | Cast:
    """The prepared correlation of the validated call ``call`` of arrays ``x``, ``k``."""
    xp, adapter, dtype, options, geometry = call.xp, call.adapter, call.dtype, call.options, call.geometry
    if half_precision(dtype):
        wide = replace(call, dtype=xp.float32, options=half_fill(xp, dtype, options))
        return Widened(xp, dtype, prepare(wide, *in_wide(xp, dtype, x, k)))
    if mixes_kinds(xp, dtype, x, k):
        return Cast(xp, dtype, prepare(call, *call.cast(x, k)))
    fillvalue = check_integral_fill(xp, dtype, options.fillvalue)  # as the dtype holds it
    options = replace(options, fillvalue=fillvalue)
    method = resolve_method(adapter, xp, x, k, dtype, options, geometry)
    # "auto" chose the FFT for eager arrays: their values are checked on every call.
    check_finite = options.method == "auto" and method == "fft" and adapter.eager
    resolved = replace(options, method=method)
    if options.method == "auto" and method == "fft" and not adapter.eager:
        # Values not to be seen here (lazy or traced): the adapter keeps NaN/inf local in the computation.
        run = adapter.prepare_auto_fft(xp, x, k, resolved, geometry)
    else:
        run = adapter.prepare_correlate(xp, x, k, resolved, geometry)
    return Prepared(replace(call, options=options), resolved, run, check_finite=check_finite)


def prepare_and_call(call: Call, x, k, key):
    """:func:`prepare`, kept for calls of signature ``key``, then called."""
    prepared = prepare(call, x, k)
    if remember(key, prepared):
        prepared.key = key
    return prepared(x, k)


def prepared_front(adapter, run: Callable, prepare: Callable) -> Callable:
    """A public call of one signature (``corr1d_multi``, ``corr3d_multi``, channels-last
    ``corr2d_multi``, ``corr1d_multi_vjp``), checked once, as :class:`Prepared` is: a repeated call
    checks only what a signature does not fix, that the operands share one device, and runs
    ``run(x, w, third)`` (``third``: a bias or None, or a VJP's output gradient);
    ``prepare(x, w, third)`` checks them again where they do not (and raises, naming the devices)."""
    if not adapter.devices:
        return run
    same = adapter.same_device

    def front(x, w, third):
        if same(x, w) and (third is None or same(x, third)):
            return run(x, w, third)
        return prepare(x, w, third)[1](x, w, third)

    return front


def remember(key, prepared) -> bool:
    """Keep ``prepared`` for calls of signature ``key`` (None, or unhashable: not kept)."""
    if key is None:
        return False
    try:
        hash(key)
    except TypeError:
        return False
    with _prepared_lock:
        if len(_PREPARED) >= _MAX_PREPARED:
            del _PREPARED[next(iter(_PREPARED))]
        _PREPARED[key] = prepared
    return True


def resolve_method(adapter: AdapterOperations, xp, x, k, dtype, options: Options, geometry) -> str:
    """The concrete method ("direct", "fft" or "native") for this signature.

    Where "auto" picks "fft" on an eager library, the caller still checks that
    the values are finite (``Prepared``).
    """
    kind = _cost_model.dtype_kind(xp, dtype)
    if options.method == "native" and not adapter.native:
        msg = (
            f'method="native" needs a library with a native convolution (an adapter with '
            f"native = True); {adapter.name} has none"
        )
        raise ValueError(msg)
    if options.method == "fft" and kind == "integral":
        msg = f'method="fft" needs floating or complex inputs; got {dtype} (use method="direct")'
        raise TypeError(msg)
    return _cost_model.concrete_method(adapter, options.method, kind, x.shape, k.shape, geometry)
