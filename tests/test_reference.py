"""The tests' own oracles checked against each other: the vectorised reference and VJP of
tests/reference.py against the double-loop reference and finite differences.

Every fast-path test (tests/test_fast_paths.py) rests on ``fast_reference``
and ``reference_vjp``; these small cases tie them to the seed's double loop.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reference import fast_reference, random, reference, reference_vjp

MODES = ("valid", "same", "full")
BOUNDARIES = ("fill", "wrap", "symm")
# (x shape, k shape, stride, dilation): plain, strided and dilated, even
# kernels, a kernel larger than x (wrap/symm extensions repeat), batches.
CASES = [
    ((7, 9), (3, 3), 1, 1),
    ((8, 7), (2, 4), (2, 3), (1, 2)),
    ((9, 10), (3, 2), 3, (2, 1)),
    ((3, 2), (5, 6), 1, 1),
    ((2, 6, 7), (2, 2), 2, 1),
    ((2, 1, 6, 5), (3, 2, 3), (1, 2), (2, 1)),
    ((6, 7), (2, 3, 2), 1, 1),
]


def _cases():
    for (x_shape, k_shape, stride, dilation), mode, boundary, convolve in itertools.product(
        CASES, MODES, BOUNDARIES, (False, True)
    ):
        extent = [d * (t - 1) + 1 for t, d in zip(k_shape[-2:], (dilation, dilation) if np.isscalar(dilation) else dilation)]
        if mode == "valid" and any(e > n for e, n in zip(extent, x_shape[-2:])):
            continue
        yield pytest.param(
            x_shape, k_shape, dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, convolve=convolve),
            id=f"{x_shape}-{k_shape}-{mode}-{boundary}-s{stride}-d{dilation}-{'conv' if convolve else 'corr'}",
        )


@pytest.mark.parametrize(("x_shape", "k_shape", "options"), list(_cases()))
def test_fast_reference_equals_the_loop_reference(x_shape, k_shape, options):
    x, k = random(x_shape), random(k_shape, seed=1)
    np.testing.assert_allclose(fast_reference(x, k, fillvalue=0.5, **options), reference(x, k, fillvalue=0.5, **options), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "complex64", "complex128"])
def test_fast_reference_dtypes(dtype):
    x, k = random((2, 9, 8), dtype), random((3, 2), dtype, seed=1)
    options = dict(mode="same", boundary="symm", stride=(1, 2))
    got = fast_reference(x, k, **options)
    assert got.dtype == (np.complex128 if dtype.startswith("complex") else np.float64)
    np.testing.assert_allclose(got, reference(x, k, **options), rtol=1e-13, atol=1e-13)


def finite_differences(x, k, g, **options):
    """``(gx, gk)`` by central differences of the double-loop reference, one entry at a time.

    The map is affine in x and linear in k, so a step of 1 is exact up to rounding.
    """

    def derivative(a, wrt):
        out = np.zeros(a.shape, dtype=np.result_type(a, g, np.float64))
        for index in np.ndindex(a.shape):
            step = np.zeros(a.shape)
            step[index] = 1.0
            if wrt == "x":
                up, down = reference(x + step, k, **options), reference(x - step, k, **options)
            else:
                up, down = reference(x, k + step, **options), reference(x, k - step, **options)
            out[index] = np.sum(g * (up - down)) / 2
        return out

    return derivative(x, "x"), derivative(k, "k")


# A smaller grid for the finite differences (each costs a loop reference per entry).
VJP_CASES = [CASES[0], CASES[1], CASES[3], CASES[5], CASES[6]]


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options"),
    [
        pytest.param(x_shape, k_shape, dict(mode=mode, boundary=boundary, stride=stride, dilation=dilation, convolve=convolve), id=f"{x_shape}-{k_shape}-{mode}-{boundary}-{convolve}")
        for i, ((x_shape, k_shape, stride, dilation), mode, boundary, convolve) in enumerate(
            itertools.product(VJP_CASES, MODES, BOUNDARIES, (False, True))
        )
        if i % 3 == 0 and not (mode == "valid" and x_shape == (3, 2))
    ],
)
def test_reference_vjp_equals_finite_differences(x_shape, k_shape, options):
    x, k = random(x_shape), random(k_shape, seed=1)
    g = random(reference(x, k, fillvalue=0.5, **options).shape, seed=2)
    gx, gk = reference_vjp(x, k, g, fillvalue=0.5, **options)
    fx, fk = finite_differences(x, k, g, fillvalue=0.5, **options)
    assert gx.shape == x.shape and gk.shape == k.shape
    np.testing.assert_allclose(gx, fx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gk, fk, rtol=1e-12, atol=1e-12)


def test_reference_vjp_is_the_transpose_for_complex_inputs():
    # No conjugation: <g, J v> = <J^T g, v> with the bilinear (not sesquilinear) product.
    x, k = random((2, 6, 7), "complex128"), random((3, 2), "complex128", seed=1)
    options = dict(mode="full", boundary="wrap", stride=2, dilation=(1, 2), convolve=True)
    g = random(reference(x, k, **options).shape, "complex128", seed=2)
    gx, gk = reference_vjp(x, k, g, **options)
    fx, fk = finite_differences(x, k, g, **options)
    np.testing.assert_allclose(gx, fx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gk, fk, rtol=1e-12, atol=1e-12)
