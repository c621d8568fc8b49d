"""The jax adapter's backward pass against the tests' float64 VJP (``reference_vjp``).

The oracle shares no code with xcorr (tests/reference.py: the transpose of an
np.pad + shift-and-add, checked against finite differences in
tests/test_reference.py): numpy's own ``corr2d_vjp`` would run the same
numba kernels as the custom calls under test.

backends/jax/ops.py gives each tap of a fill-extended direct correlation its own
``lax.pad`` (negative widths crop), which the input gradient's "full"
correlation runs through; these cases cover every mode and boundary with
strides, dilations, kernels larger than the fill margin and batches.

Each test runs three times (the ``kernel_gradient_path`` fixture): with the
kernel gradient, and correlations whose windows leave the input into a
fill (the input gradient's), as numba's kernels inside XLA custom calls
(``backends/_jax_numba.py``, the size threshold lowered so that these small
cases take them), the same with the rows split between the handler and
XLA's thread pool, and with numba turned off (XLA's own code).
"""

from __future__ import annotations

import numpy as np
import pytest

import xcorr
from xcorr._prepared import clear_prepared

from matrix import require_module
from paths import force
from reference import fast_reference, reference, reference_vjp

jax = require_module("jax")
jnp = jax.numpy


@pytest.fixture(params=["numba-ffi", "numba-ffi-threads", "xla"])
def kernel_gradient_path(request, monkeypatch):
    """The path under test, whether each call of the kernel-gradient hook applied,
    and the number of correlations that took numba's kernel."""
    from xcorr.backends.jax import autodiff, ops

    if request.param.startswith("numba-ffi"):
        require_module("numba")
        force(monkeypatch, "jax", numba_min_outputs=0)
        if request.param.endswith("threads"):  # rows in chunks shared with XLA's thread pool
            force(monkeypatch, "jax", numba_threaded_work=0)
    else:
        force(monkeypatch, "jax", numba=False)
    applied, correlations = [], []
    real_applies, real_correlate = ops.numba_kernel_gradient_applies, ops.numba_correlate

    def applies(*args):
        result = real_applies(*args)
        applied.append(result)
        return result

    def correlate(*args, **kwargs):
        correlations.append(1)
        return real_correlate(*args, **kwargs)

    monkeypatch.setattr(ops, "numba_kernel_gradient_applies", applies)
    monkeypatch.setattr(ops, "numba_correlate", correlate)
    # The paths are chosen when a call is traced; traces are cached per configuration.
    autodiff.differentiable_kernel.cache_clear()
    ops.forward_kernel.cache_clear()
    yield request.param, applied, correlations
    autodiff.differentiable_kernel.cache_clear()
    ops.forward_kernel.cache_clear()


# (x shape, k shape, stride, dilation)
CASES = {
    "plain": ((45, 37), (3, 3), 1, 1),
    "one-band": ((9, 12), (2, 3), 1, 1),
    "strided": ((83, 41), (3, 2), (2, 3), (1, 2)),
    "dilated": ((70, 50), (2, 3), 1, (3, 2)),
    "batch": ((3, 40, 33), (3, 3), 1, 1),
    "broadcast": ((2, 1, 38, 30), (3, 2, 3), 2, 1),
    "kernel-batch": ((41, 29), (2, 3, 3), 1, 1),
    "row-kernel": ((30, 140), (1, 5), 1, 1),
    "5x5": ((90, 60), (5, 5), 1, 1),
    "kernel-wider-than-x": ((6, 4), (3, 7), 1, (1, 2)),
}
FUNCTIONS = ("corr2d", "conv2d")
MODES = ("valid", "same", "full")
BOUNDARIES = ("fill", "wrap", "symm")


def grid():
    """Every (function, mode, boundary), each with the next case in turn (not the full product)."""
    combos = [(f, m, b) for f in FUNCTIONS for m in MODES for b in BOUNDARIES]
    names = list(CASES)
    return [
        pytest.param(*combo, names[(i + j) % len(names)], id=f"{'-'.join(combo)}-{names[(i + j) % len(names)]}")
        for i, combo in enumerate(combos)
        for j in (0, len(names) // 2)
    ]


def _vjps(name, x, k, g, **options):
    """``(want, got)``: the reference VJP (float64/complex128) and jax's, as corr2d_vjp/conv2d_vjp."""
    vjp = xcorr.corr2d_vjp if name == "corr2d" else xcorr.conv2d_vjp
    plain = {key: value for key, value in options.items() if key != "method"}
    want = reference_vjp(x, k, g, convolve=name == "conv2d", **plain)
    if not np.iscomplexobj(x):
        want = tuple(a.real for a in want)
    got = vjp(jnp.asarray(x), jnp.asarray(k), jnp.asarray(g), **options)
    return want, got


def _inputs(x_shape, k_shape, options, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)

    def draw(shape):
        a = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dtype)

    x, k = draw(x_shape), draw(k_shape)
    plain = {key: value for key, value in options.items() if key != "method"}
    g = draw(fast_reference(x, k, **plain).shape)
    return x, k, g


@pytest.mark.parametrize(("name", "mode", "boundary", "case"), grid())
def test_vjp_matches_reference(kernel_gradient_path, name, mode, boundary, case):
    x_shape, k_shape, stride, dilation = CASES[case]
    if mode == "valid" and case == "kernel-wider-than-x":
        pytest.skip('a kernel larger than x is an error in "valid" mode')
    options = dict(mode=mode, boundary=boundary, fillvalue=0.5, stride=stride, dilation=dilation, method="direct")
    x, k, g = _inputs(x_shape, k_shape, options)
    (gx, gk), (jgx, jgk) = _vjps(name, x, k, g, **options)
    np.testing.assert_allclose(np.asarray(jgx), gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(jgk), gk, rtol=1e-10, atol=1e-10)
    path, applied, correlations = kernel_gradient_path
    # numba's kernels take a 2-D kernel; a batch of kernels takes XLA's. The
    # input gradient is a "full" correlation, its windows leaving g into zeros.
    numba = path.startswith("numba-ffi") and len(k_shape) == 2
    assert applied == [numba]
    assert bool(correlations) == numba


@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int64])
def test_dtypes(kernel_gradient_path, dtype):
    options = dict(mode="same", boundary="fill", method="direct")
    x, k, g = _inputs((50, 44), (3, 3), options, dtype=dtype if dtype != np.int64 else np.float64)
    if dtype == np.int64:
        x, k, g = (np.round(a * 10).astype(np.int64) for a in (x, k, g))
    (gx, gk), (jgx, jgk) = _vjps("corr2d", x, k, g, **options)
    assert jgk.dtype == x.dtype and jgx.dtype == x.dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(np.asarray(jgk), gk, rtol=tol, atol=tol * np.abs(gk).max())
    np.testing.assert_allclose(np.asarray(jgx), gx, rtol=tol, atol=tol * np.abs(gx).max())
    path, applied, correlations = kernel_gradient_path
    # complex and integer operands take XLA's reductions (integers exactly, in int64).
    assert applied == [path.startswith("numba-ffi") and dtype == np.float32]
    assert bool(correlations) == (path.startswith("numba-ffi") and dtype == np.float32)


def test_grad_under_jit_and_vmap(kernel_gradient_path):
    options = dict(mode="same", boundary="symm", stride=(1, 2))
    x, k, g = _inputs((4, 40, 36), (3, 3), options)
    x, k, g = (jnp.asarray(a) for a in (x, k, g))

    def loss(x, k, g):
        return (xcorr.corr2d(x, k, **options) * g).sum()

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    per_plane = jax.vmap(grad, in_axes=(0, None, 0))(x, k, g)
    for i in range(x.shape[0]):
        want = reference_vjp(np.asarray(x[i]), np.asarray(k), np.asarray(g[i]), **options)
        np.testing.assert_allclose(np.asarray(per_plane[0][i]), want[0], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(np.asarray(per_plane[1][i]), want[1], rtol=1e-10, atol=1e-10)
    gx, gk = grad(x, k, g)
    want = reference_vjp(np.asarray(x), np.asarray(k), np.asarray(g), **options)
    np.testing.assert_allclose(np.asarray(gx), want[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(gk), want[1], rtol=1e-10, atol=1e-10)
    path, applied, _correlations = kernel_gradient_path
    assert applied and all(a == (path.startswith("numba-ffi")) for a in applied)


def test_large_kernel_gradient_float32_nan_and_inf(kernel_gradient_path):
    # Above the default size threshold (no monkeypatching of it): float32
    # sums agree with float64 ones to float32 rounding, and non-finite values
    # reach exactly the taps whose windows meet them.
    path, applied, _correlations = kernel_gradient_path
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 150, 130)).astype(np.float32)
    k = rng.standard_normal((3, 4)).astype(np.float32)
    g = rng.standard_normal((2, 74, 127)).astype(np.float32)
    options = dict(mode="valid", stride=(2, 1))
    _, want = reference_vjp(x, k, g, **options)
    grad = jax.jit(jax.grad(lambda k, x, g: (xcorr.corr2d(x, k, **options) * g).sum()))
    gk = grad(jnp.asarray(k), jnp.asarray(x), jnp.asarray(g))
    assert gk.dtype == jnp.float32 and gk.shape == (3, 4)
    np.testing.assert_allclose(np.asarray(gk), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    x[1, 0, 0] = np.inf  # read by tap (0, 0) only
    gk = np.asarray(grad(jnp.asarray(k), jnp.asarray(x), jnp.asarray(g)))
    assert np.isinf(gk[0, 0]) and np.isfinite(gk.ravel()[1:]).all()
    g[0, 3, 3] = np.nan
    assert np.isnan(np.asarray(grad(jnp.asarray(k), jnp.asarray(x), jnp.asarray(g)))).all()
    assert applied and all(a == (path.startswith("numba-ffi")) for a in applied)


def test_custom_call_rejects_unexpected_operands():
    # The handler checks the operands it is given (dtype, rank, sizes) and
    # fails the computation with a message instead of reading out of bounds.
    require_module("numba")
    from xcorr.backends import _jax_numba

    x, g = jnp.ones((1, 20, 20), jnp.float32), jnp.ones((1, 18, 18), jnp.float32)
    params = (0, 0, 1, 1, 1, 1)
    good = _jax_numba.kernel_gradient(x, g, jnp.zeros(2, jnp.float32), (3, 3), params)
    np.testing.assert_array_equal(np.asarray(good), np.full((3, 3), 18 * 18, np.float32))
    with pytest.raises(Exception, match="unexpected type or shape"):
        jax.block_until_ready(_jax_numba.kernel_gradient(x, g, jnp.zeros(3, jnp.float32), (3, 3), params))
    for bad in (g.astype(jnp.float64), jnp.concatenate([g, g])):  # another dtype, another number of planes
        with pytest.raises(Exception, match="unexpected type or shape"):
            jax.block_until_ready(_jax_numba.kernel_gradient(x, bad, jnp.zeros(2, jnp.float32), (3, 3), params))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("name", "mode", "stride", "dilation", "x_shape", "k_shape"),
    [
        ("corr2d", "same", 1, 1, (37, 41), (3, 3)),
        ("conv2d", "full", 1, 1, (2, 20, 25), (4, 5)),
        ("corr2d", "full", (2, 1), (1, 3), (30, 33), (3, 2)),
        ("conv2d", "same", (1, 3), 2, (26, 40), (5, 3)),
        ("corr2d", "full", 1, 1, (5, 6), (8, 9)),  # windows wider than x
        ("corr2d", "valid", 1, 1, (30, 33), (3, 3)),  # inside x: numba's kernel too
    ],
)
def test_forward_reading_fill(kernel_gradient_path, dtype, name, mode, stride, dilation, x_shape, k_shape):
    # The forward through numba's kernel where windows leave x into the fill
    # (rows of the fill value, edge columns apart); with a column stride XLA's
    # (the extension it needs is built by XLA too).
    path, _, correlations = kernel_gradient_path
    rng = np.random.default_rng(5)
    x, k = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(k_shape).astype(dtype)
    options = dict(mode=mode, boundary="fill", fillvalue=0.25, stride=stride, dilation=dilation)
    y = getattr(xcorr, name)(jnp.asarray(x), jnp.asarray(k), method="direct", **options)
    want = reference(x.astype(np.float64), k.astype(np.float64), convolve=name == "conv2d", **options)
    assert y.dtype == jnp.dtype(dtype) and y.shape == want.shape
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(np.asarray(y), want, rtol=tol, atol=tol * np.abs(want).max())
    column_stride = stride if isinstance(stride, int) else stride[1]
    assert bool(correlations) == (path.startswith("numba-ffi") and (mode == "valid" or column_stride == 1))


def test_export_takes_native_or_fft(kernel_gradient_path):
    # jax.export refuses custom calls without compatibility guarantees, and
    # numba's kernels are such calls: method="native" (lax.conv, for the
    # gradients too) and method="fft" never emit them.
    from jax import export

    _path, applied, correlations = kernel_gradient_path
    x, k = jnp.ones((40, 30), jnp.float32), jnp.ones((3, 3), jnp.float32)
    for method in ("native", "fft"):

        def loss(x, k, method=method):
            return (xcorr.corr2d(x, k, mode="same", method=method) ** 2).sum()

        # export checks the custom calls (serializing needs flatbuffers, not installed here).
        gx, gk = export.export(jax.jit(jax.grad(loss, argnums=(0, 1))))(x, k).call(x, k)
        ones = np.ones((40, 30)), np.ones((3, 3))
        want = reference_vjp(*ones, 2 * fast_reference(*ones, mode="same"), mode="same")
        np.testing.assert_allclose(np.asarray(gx), want[0], rtol=1e-5)
        np.testing.assert_allclose(np.asarray(gk), want[1], rtol=1e-5)
    assert not any(applied) and not correlations
    direct = jax.jit(jax.grad(lambda x, k: (xcorr.corr2d(x, k, mode="same", method="direct") ** 2).sum()))
    # numba's custom calls give way to XLA's own ops when lowered for export (issue 15).
    np.testing.assert_allclose(np.asarray(export.export(direct)(x, k).call(x, k)), np.asarray(direct(x, k)), rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "x_shape", "k_shape", "stride", "dilation"),
    [
        ("corr2d", (2, 30, 41), (3, 3), 1, 1),
        ("conv2d", (33, 40), (4, 2), (2, 3), (1, 2)),
        ("corr2d", (3, 1, 24, 28), (1, 2), (1, 2), 1),
    ],
)
def test_forward_inside_large_outputs(kernel_gradient_path, monkeypatch, name, x_shape, k_shape, stride, dilation):
    # Outputs inside x take numba's kernel, which asks for huge pages for
    # large ones first (the threshold lowered here).
    force(monkeypatch, "jax", hugepages=True, hugepage_min_bytes=0)
    path, _, correlations = kernel_gradient_path
    rng = np.random.default_rng(6)
    x, k = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(k_shape).astype(np.float32)
    options = dict(stride=stride, dilation=dilation)
    y = getattr(xcorr, name)(jnp.asarray(x), jnp.asarray(k), method="direct", **options)
    want = reference(x.astype(np.float64), k.astype(np.float64), convolve=name == "conv2d", **options)
    assert y.dtype == jnp.float32 and y.shape == want.shape
    np.testing.assert_allclose(np.asarray(y), want, rtol=2e-5, atol=2e-5 * np.abs(want).max())
    assert bool(correlations) == path.startswith("numba-ffi")


def test_a_loss_over_the_forward_keeps_numbas_kernel():
    # With a reduction among its consumers, XLA's CPU fusion of its own
    # shift-and-add wrote every tap's window out as an array (a loss over a
    # 1024² 5x5 correlation took 35 times the forward): outputs inside x take
    # the custom call, whose result is computed alone, at the default tuning.
    require_module("numba")
    rng = np.random.default_rng(8)
    x, k = rng.standard_normal((200, 190)).astype(np.float32), rng.standard_normal((5, 5)).astype(np.float32)
    g = rng.standard_normal((196, 186)).astype(np.float32)
    loss = jax.jit(lambda x, k, g: (xcorr.corr2d(x, k) * g).sum())
    hlo = loss.lower(x, k, g).compile().as_text()
    assert 'custom_call_target="xcorr_correlate_float32"' in hlo
    want = float((reference(x.astype(np.float64), k.astype(np.float64)) * g).sum())
    assert float(loss(x, k, g)) == pytest.approx(want, rel=1e-4, abs=1e-2)


def test_custom_calls_only_on_the_tested_ffi_layout(monkeypatch):
    # The handlers read XLA's FFI structs by word offsets: jaxlib's header must
    # declare exactly the structs they were tested on, else XLA's own code runs.
    require_module("numba")
    from xcorr.backends import _jax_numba
    from xcorr.backends.jax import autodiff, custom_calls, ops

    assert _jax_numba.header_layout() == ((0, 3), _jax_numba.TESTED_LAYOUT)
    _jax_numba.layout_supported.cache_clear()
    assert _jax_numba.layout_supported()
    monkeypatch.setattr(_jax_numba, "header_layout", lambda: ((0, 4), "0" * 64))
    _jax_numba.layout_supported.cache_clear()
    custom_calls.numba_custom_calls.cache_clear()
    autodiff.differentiable_kernel.cache_clear()
    ops.forward_kernel.cache_clear()
    force(monkeypatch, "jax", numba_min_outputs=0)
    try:
        with pytest.warns(RuntimeWarning, match=r"FFI API \(0, 4\).*XLA's own code"):
            assert not custom_calls.numba_custom_calls()
        x = np.random.default_rng(0).standard_normal((20, 30))
        k = np.array([[1.0, -2.0], [0.5, 3.0]])
        real = ops.numba_correlate
        monkeypatch.setattr(ops, "numba_correlate", lambda *a, **k: pytest.fail("custom call on an untested layout"))
        y = xcorr.corr2d(jnp.asarray(x), jnp.asarray(k), mode="full", method="direct")
        np.testing.assert_allclose(np.asarray(y), reference(x, k, mode="full"), rtol=1e-12, atol=1e-12)
        monkeypatch.setattr(ops, "numba_correlate", real)
    finally:
        for cached in (_jax_numba.layout_supported, custom_calls.numba_custom_calls,
                       autodiff.differentiable_kernel, ops.forward_kernel):  # fmt: skip
            cached.cache_clear()
        clear_prepared()


# -- jax.export of the default method ----------------------------------------------------------


def test_jax_export_of_the_default_method_takes_xla_ops(monkeypatch):
    """Exported code gets XLA's own ops where a jitted call takes numba's custom calls (same numbers)."""
    jax = require_module("jax")
    require_module("numba")
    import jax.numpy as jnp
    from jax import export

    from xcorr.backends import _jax_numba

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((200, 150)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((3, 3)), jnp.float32)

    def loss(x, k):
        return (xcorr.corr2d(x, k, mode="same") ** 2).sum()

    forward = jax.jit(lambda x, k: xcorr.corr2d(x, k, mode="same"))
    gradients = jax.jit(jax.grad(loss, argnums=(0, 1)))
    batched = jax.jit(jax.vmap(lambda x: xcorr.corr2d(x, k, mode="full")))
    xs = jnp.stack([x, 2 * x])
    for function, args in ((forward, (x, k)), (gradients, (x, k)), (batched, (xs,))):
        # jitted: numba's kernels as custom calls (this is what export used to refuse)
        assert "custom_call" in function.lower(*args).as_text()
        exported = export.export(function)(*args)
        assert "custom_call" not in exported.mlir_module()
        want, got = jax.tree.leaves(function(*args)), jax.tree.leaves(exported.call(*args))
        for a, b in zip(got, want):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-5 * float(jnp.abs(b).max()))
    assert "xcorr_correlate_float32" in _jax_numba._COMPILED
