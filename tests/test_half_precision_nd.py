"""float16 and bfloat16 in 1-D, 2-D and 3-D, forward, VJPs and JVPs: computed in float32, rounded once.

A 3-D correlation is a sum of 2-D ones over the kernel's depth taps; each 2-D call of half
operands rounds its result, so a sum of rounded terms would be rounded once per tap. xcorr widens
the operands first and rounds the sum once, as ``F.conv3d`` and ``lax.conv_general_dilated`` do;
the public VJPs (a kernel gradient is a sum over every output) and JVPs (a sum of two terms) do
the same.
The checks are per element: within half a unit in the last place of the half dtype (the one
rounding) plus float32 summation slack, against float64 oracles of the half-rounded operands
(scipy.signal and torch's float64 natives), and the fill value as the half dtype holds it.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import xcorr

from matrix import require_module

#: (backend, dtype): the half dtypes each library holds (numpy has no bfloat16).
CASES = [("numpy", "float16"), ("torch", "float16"), ("torch", "bfloat16"), ("jax", "float16"), ("jax", "bfloat16")]
#: Significand bits of the half dtypes, the implicit one included.
BITS = {"float16": 11, "bfloat16": 8}
FILL = 0.1  # 0.0999755859375 in float16, 0.10009765625 in bfloat16


def _library(backend: str, dtype: str):
    """``(to_half, to_float64)``: a float32 NumPy array as a half array of ``backend``, and back."""
    if backend == "numpy":
        return (lambda a: a.astype(np.float16)), (lambda y: np.asarray(y, dtype=np.float64))
    if backend == "torch":
        torch = require_module("torch")
        return (lambda a: torch.from_numpy(a).to(getattr(torch, dtype))), (lambda y: y.double().numpy())
    jnp = require_module("jax").numpy
    return (lambda a: jnp.asarray(a, dtype=getattr(jnp, dtype))), (lambda y: np.asarray(y, dtype=np.float64))


def _operands(backend: str, dtype: str, *shapes: tuple[int, ...]):
    """Random half operands of ``backend`` and the float64 values they hold."""
    to_half, to_float64 = _library(backend, dtype)
    rng = np.random.default_rng(sum(map(sum, shapes)))
    halves = [to_half(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
    return halves, [to_float64(h) for h in halves], to_float64


def _held(value: float, dtype: str) -> float:
    """``value`` as the half dtype holds it (round to nearest, ties to even)."""
    m, e = np.frexp(value)
    return float(np.ldexp(np.round(np.ldexp(m, BITS[dtype])), e - BITS[dtype]))


def assert_rounded_once(y, expected, dtype: str, what: str) -> None:
    """Each element of ``y`` is ``expected`` rounded to the half dtype: within half a unit in the last
    place there, plus float32 summation slack."""
    ulp = np.ldexp(1.0, np.frexp(np.abs(expected))[1] - BITS[dtype])
    slack = 1e-5 * np.max(np.abs(expected))
    error = np.abs(y - expected)
    worst = np.unravel_index(np.argmax(error - (ulp / 2 + slack)), error.shape)
    assert np.all(error <= ulp / 2 + slack), (
        f"{what}: {int(np.sum(error > ulp / 2 + slack))} of {error.size} elements are not rounded once; "
        f"at {worst}: {y[worst]} against {expected[worst]} (half an ulp: {ulp[worst] / 2})"
    )


def _torch64():
    torch = require_module("torch")
    return torch, torch.nn.functional


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_corr3d_and_conv3d_round_once(backend, dtype):
    (x, k), (x64, k64), back = _operands(backend, dtype, (7, 8, 9), (5, 3, 2))
    fill = _held(FILL, dtype)
    # mode "same" with a fill: scipy's N-d centring of the kernel, the fill as the half dtype holds it
    pads = [(n // 2, (n - 1) // 2) for n in k64.shape]
    expected = scipy.signal.correlate(np.pad(x64, pads, constant_values=fill), k64, mode="valid")
    y = xcorr.corr3d(x, k, mode="same", fillvalue=FILL)
    assert str(y.dtype).endswith(dtype)
    assert_rounded_once(back(y), expected, dtype, "corr3d")
    flipped = scipy.signal.convolve(x64, k64, mode="valid")
    assert_rounded_once(back(xcorr.conv3d(x, k)), flipped, dtype, "conv3d")


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_corr3d_multi_and_transposes_round_once(backend, dtype):
    torch, F = _torch64()
    (x, w, b), (x64, w64, b64), back = _operands(backend, dtype, (2, 4, 6, 5, 7), (4, 2, 4, 2, 3), (4,))
    t = [torch.from_numpy(a) for a in (x64, w64, b64)]
    y = xcorr.corr3d_multi(x, w, bias=b, groups=2, padding=1)
    assert str(y.dtype).endswith(dtype)
    expected = F.conv3d(t[0], t[1], t[2], groups=2, padding=1).numpy()
    assert_rounded_once(back(y), expected, dtype, "corr3d_multi")
    (z, wt, bt), (z64, wt64, bt64), _ = _operands(backend, dtype, (1, 3, 4, 3, 5), (3, 2, 4, 2, 3), (2,))
    tt = [torch.from_numpy(a) for a in (z64, wt64, bt64)]
    yt = xcorr.conv_transpose3d(z, wt, bias=bt, stride=2)
    expected = F.conv_transpose3d(tt[0], tt[1], tt[2], stride=2).numpy()
    assert_rounded_once(back(yt), expected, dtype, "conv_transpose3d")
    ys = xcorr.corr3d_transpose(z[0, 0], wt[0, 0], stride=(1, 2, 1))
    expected = F.conv_transpose3d(tt[0][:1, :1], tt[1][:1, :1], stride=(1, 2, 1)).numpy()[0, 0]
    assert_rounded_once(back(ys), expected, dtype, "corr3d_transpose")


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_one_d_rounds_once(backend, dtype):
    torch, F = _torch64()
    (x, k, w), (x64, k64, w64), back = _operands(backend, dtype, (3, 40), (7,), (4, 3, 5))
    fill = _held(FILL, dtype)
    expected = scipy.signal.correlate(np.pad(x64, ((0, 0), (3, 3)), constant_values=fill), k64[None], mode="valid")
    assert_rounded_once(back(xcorr.corr1d(x, k, mode="same", fillvalue=FILL)), expected, dtype, "corr1d")
    expected = F.conv1d(torch.from_numpy(x64)[None], torch.from_numpy(w64), padding=2).numpy()[0]
    assert_rounded_once(back(xcorr.corr1d_multi(x, w, padding=2)), expected, dtype, "corr1d_multi")


def _vjp_case(backend, dtype, shapes, xcorr_vjp, torch_forward, what):
    """``xcorr_vjp(x, k, g)`` of half operands against torch autograd through ``torch_forward`` in
    float64 on the values they hold."""
    torch, _ = _torch64()
    (x, k), (x64, k64), back = _operands(backend, dtype, *shapes)
    xt, kt = (torch.from_numpy(a).requires_grad_() for a in (x64, k64))
    y = torch_forward(xt, kt)
    to_half, _ = _library(backend, dtype)
    g = to_half(np.random.default_rng(7).standard_normal(tuple(y.shape)).astype(np.float32))
    expected = torch.autograd.grad(y, (xt, kt), torch.from_numpy(back(g)))
    got = xcorr_vjp(x, k, g)
    for name, a, b in zip(("gx", "gk"), got, expected):
        assert str(a.dtype).endswith(dtype), f"{what} {name}: {a.dtype}"
        assert_rounded_once(back(a), b.numpy(), dtype, f"{what} {name}")


def _vjp_cases(torch, F, dtype):
    """(name, shapes, xcorr VJP, torch forward): every public VJP of 1, 2 and 3 axes."""
    fill = _held(FILL, dtype)

    def filled(x, pads):  # x extended by ``fill`` (torch's F.pad takes the last axis first)
        return F.pad(x, [p for pair in reversed(pads) for p in pair], value=fill)

    return [
        ("corr1d_vjp", ((3, 30), (5,)), lambda x, k, g: xcorr.corr1d_vjp(x, k, g, stride=2),
         lambda x, k: F.conv1d(x[:, None], k[None, None], stride=2)[:, 0]),
        ("corr2d_vjp", ((4, 9, 10), (3, 2)), lambda x, k, g: xcorr.corr2d_vjp(x, k, g, mode="full", fillvalue=FILL),
         lambda x, k: F.conv2d(filled(x, [(2, 2), (1, 1)])[:, None], k[None, None])[:, 0]),
        ("corr2d_multi_vjp", ((2, 4, 9, 8), (4, 2, 3, 3)), lambda x, w, g: xcorr.corr2d_multi_vjp(x, w, g, groups=2),
         lambda x, w: F.conv2d(x, w, groups=2)),
        ("conv_transpose2d_vjp", ((1, 3, 4, 5), (3, 2, 2, 3)),
         lambda x, w, g: xcorr.conv_transpose2d_vjp(x, w, g, stride=2),
         lambda x, w: F.conv_transpose2d(x, w, stride=2)),
        ("corr2d_transpose_vjp", ((5, 6), (3, 2)), lambda x, k, g: xcorr.corr2d_transpose_vjp(x, k, g, stride=2),
         lambda x, k: F.conv_transpose2d(x[None, None], k[None, None], stride=2)[0, 0]),
        ("corr3d_vjp", ((6, 7, 8), (4, 3, 2)), lambda x, k, g: xcorr.corr3d_vjp(x, k, g, mode="full", fillvalue=FILL),
         lambda x, k: F.conv3d(filled(x, [(3, 3), (2, 2), (1, 1)])[None, None], k[None, None])[0, 0]),
        ("corr3d_multi_vjp", ((2, 4, 5, 6, 5), (4, 2, 3, 2, 3)),
         lambda x, w, g: xcorr.corr3d_multi_vjp(x, w, g, groups=2, padding=1),
         lambda x, w: F.conv3d(x, w, groups=2, padding=1)),
        ("conv_transpose3d_vjp", ((1, 3, 3, 4, 3), (3, 2, 3, 2, 2)),
         lambda x, w, g: xcorr.conv_transpose3d_vjp(x, w, g, stride=2),
         lambda x, w: F.conv_transpose3d(x, w, stride=2)),
        ("corr3d_transpose_vjp", ((3, 4, 5), (3, 2, 2)), lambda x, k, g: xcorr.corr3d_transpose_vjp(x, k, g, stride=2),
         lambda x, k: F.conv_transpose3d(x[None, None], k[None, None], stride=2)[0, 0]),
    ]  # fmt: skip


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_vjps_round_once(backend, dtype):
    torch, F = _torch64()
    for what, shapes, vjp, forward in _vjp_cases(torch, F, dtype):
        _vjp_case(backend, dtype, shapes, vjp, forward, what)


def _jvp_cases(F, dtype):
    """(name, shapes, xcorr JVP, torch forward): the public JVPs of 1, 2 and 3 axes."""
    fill = _held(FILL, dtype)

    def filled(x, pads):  # x extended by ``fill``, a constant (its tangent is 0)
        return F.pad(x, [p for pair in reversed(pads) for p in pair], value=fill)

    return [
        ("corr1d_jvp", ((3, 30), (5,)), lambda x, k, dx, dk: xcorr.corr1d_jvp(x, k, dx, dk, dilation=2),
         lambda x, k: F.conv1d(x[:, None], k[None, None], dilation=2)[:, 0]),
        ("corr2d_jvp", ((4, 9, 10), (3, 2)),
         lambda x, k, dx, dk: xcorr.corr2d_jvp(x, k, dx, dk, mode="full", fillvalue=FILL),
         lambda x, k: F.conv2d(filled(x, [(2, 2), (1, 1)])[:, None], k[None, None])[:, 0]),
        ("corr2d_multi_jvp", ((2, 4, 9, 8), (4, 2, 3, 3)),
         lambda x, w, dx, dw: xcorr.corr2d_multi_jvp(x, w, dx, dw, groups=2),
         lambda x, w: F.conv2d(x, w, groups=2)),
        ("corr3d_jvp", ((6, 7, 8), (4, 3, 2)),
         lambda x, k, dx, dk: xcorr.corr3d_jvp(x, k, dx, dk, mode="full", fillvalue=FILL),
         lambda x, k: F.conv3d(filled(x, [(3, 3), (2, 2), (1, 1)])[None, None], k[None, None])[0, 0]),
        ("corr3d_multi_jvp", ((2, 4, 5, 6, 5), (4, 2, 3, 2, 3)),
         lambda x, w, dx, dw: xcorr.corr3d_multi_jvp(x, w, dx, dw, groups=2, padding=1),
         lambda x, w: F.conv3d(x, w, groups=2, padding=1)),
    ]  # fmt: skip


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_jvps_round_once(backend, dtype):
    torch, F = _torch64()
    for what, (x_shape, k_shape), jvp, forward in _jvp_cases(F, dtype):
        halves, values, back = _operands(backend, dtype, x_shape, k_shape, x_shape, k_shape)
        _, expected = torch.autograd.functional.jvp(forward, tuple(torch.from_numpy(v) for v in values[:2]),
                                     tuple(torch.from_numpy(v) for v in values[2:]))  # fmt: skip
        got = jvp(*halves)
        assert str(got.dtype).endswith(dtype), f"{what}: {got.dtype}"
        assert_rounded_once(back(got), expected.numpy(), dtype, what)


def _integer_cases():
    """(name, shapes, call): public functions of 1, 2 and 3 axes; the first operand is the integer one,
    the others (a kernel, a cotangent, tangents) half."""
    return [
        ("corr1d", ((3, 20), (4,)), lambda x, k: xcorr.corr1d(x, k, mode="same", fillvalue=FILL)),
        ("corr2d", ((2, 9, 10), (3, 2)), lambda x, k: xcorr.corr2d(x, k, mode="full")),
        ("corr3d", ((5, 6, 7), (3, 2, 2)), lambda x, k: xcorr.corr3d(x, k, mode="same")),
        ("corr2d_multi", ((2, 4, 7, 6), (4, 2, 3, 3)), lambda x, w: xcorr.corr2d_multi(x, w, groups=2, padding=1)),
        ("corr3d_multi", ((1, 2, 5, 4, 5), (3, 2, 2, 2, 3)), lambda x, w: xcorr.corr3d_multi(x, w, padding=1)),
        ("conv_transpose2d", ((1, 3, 4, 5), (3, 2, 2, 3)), lambda x, w: xcorr.conv_transpose2d(x, w, stride=2)),
        ("corr2d_vjp", ((4, 9, 10), (3, 2), (4, 7, 9)), xcorr.corr2d_vjp),
        ("corr3d_vjp", ((5, 6, 7), (3, 2, 2), (3, 5, 6)), xcorr.corr3d_vjp),
        ("corr2d_jvp", ((4, 9, 10), (3, 2), (4, 9, 10), (3, 2)), xcorr.corr2d_jvp),
        ("corr3d_jvp", ((5, 6, 7), (3, 2, 2), (5, 6, 7), (3, 2, 2)), xcorr.corr3d_jvp),
    ]


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_an_integer_operand_is_the_half_value_it_becomes(backend, dtype):
    """An integer operand with a half one takes the half dtype (torch's promotion), before the float32
    sum: 2049 in a float16 call is 2048, so the result is the one of the operand cast by hand."""
    to_half, back = _library(backend, dtype)
    rng = np.random.default_rng(3)
    for what, (x_shape, *shapes), call in _integer_cases():
        ints = rng.integers(2040, 2060, size=x_shape)  # float16 holds every even one, bfloat16 every 8th
        if backend == "numpy":
            x = ints
        elif backend == "torch":
            x = require_module("torch").from_numpy(ints)
        else:
            x = require_module("jax").numpy.asarray(ints, dtype="int32")
        halves = [to_half(rng.standard_normal(shape).astype(np.float32) / 8) for shape in shapes]  # sums in range
        got, expected = (call(a, *halves) for a in (x, to_half(ints.astype(np.float32))))
        if not isinstance(got, tuple):
            got, expected = (got,), (expected,)
        for a, b in zip(got, expected):
            assert str(a.dtype).endswith(dtype), f"{what}: {a.dtype}"
            np.testing.assert_array_equal(back(a), back(b), err_msg=what)
