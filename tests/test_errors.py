"""Bad input is rejected before any backend work, with a message naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import xcorr

from matrix import require_module

FUNCTIONS = [xcorr.corr2d, xcorr.conv2d]


def arrays(backend, x_shape=(5, 6), k_shape=(2, 2), dtype="float64"):
    return backend.asarray(np.ones(x_shape, dtype)), backend.asarray(np.ones(k_shape, dtype))


@pytest.mark.parametrize("f", FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options", "error", "match"),
    [
        ((5, 6), (6, 2), {}, ValueError, r"k is larger than x in \"valid\" mode"),
        ((5, 6), (2, 7), {}, ValueError, r"k is larger than x"),
        ((5, 6), (3, 2), {"dilation": 3}, ValueError, r"along the rows: dilated kernel \(extent 7\)"),
        ((6,), (2, 2), {}, ValueError, r"x must have at least 2 dimensions.*\(6,\)"),
        ((5, 6), (2,), {}, ValueError, r"k must have at least 2 dimensions.*\(2,\)"),
        ((5, 6), (0, 2), {}, ValueError, r"k must not be empty.*\(0, 2\)"),
        ((5, 0), (1, 1), {"mode": "same"}, ValueError, r"x must not be empty.*\(5, 0\)"),
        ((5, 6), (2, 2), {"mode": "sam"}, ValueError, r"mode must be one of .*'sam'"),
        ((5, 6), (2, 2), {"boundary": "reflection"}, ValueError, r"boundary must be one of .*'reflection'"),
        ((5, 6), (2, 2), {"stride": 0}, ValueError, r"stride must be >= 1; got 0"),
        ((5, 6), (2, 2), {"dilation": (1, -1)}, ValueError, r"dilation must be >= 1"),
        ((5, 6), (2, 2), {"stride": (1, 2, 3)}, ValueError, r"stride must be an int or a sequence of 1 or 2 ints"),
        ((5, 6), (2, 2), {"stride": 1.5}, TypeError, r"stride must be an int"),
        ((5, 6), (2, 2), {"dilation": True}, TypeError, r"dilation must be an int"),
        ((5, 6), (2, 2), {"fillvalue": [1, 2]}, ValueError, r"fillvalue must be a scalar number; got list"),
        ((5, 6), (2, 2), {"fillvalue": np.ones(2)}, ValueError, r"fillvalue must be a scalar.*shape \(2,\)"),
        ((2, 5, 6), (3, 2, 2), {}, ValueError, r"batch dimensions of x \(2,\) and k \(3,\) do not broadcast"),
    ],
)
def test_bad_arguments(backend, f, x_shape, k_shape, options, error, match):
    x, k = arrays(backend, x_shape, k_shape)
    with pytest.raises(error, match=match):
        f(x, k, **options)


def test_bool_arrays_are_rejected(backend):
    x, k = arrays(backend, dtype="bool")
    with pytest.raises(TypeError, match=r"x must have a numeric dtype"):
        xcorr.corr2d(x, backend.asarray(np.ones((2, 2))))
    with pytest.raises(TypeError, match=r"k must have a numeric dtype"):
        xcorr.corr2d(backend.asarray(np.ones((4, 4))), k)


def test_python_lists_are_rejected(backend):
    x, k = arrays(backend)
    with pytest.raises(TypeError, match=r"x must be an array .* got list"):
        xcorr.corr2d([[1.0, 2.0], [3.0, 4.0]], k)
    with pytest.raises(TypeError, match=r"k must be an array .* got list"):
        xcorr.corr2d(x, [[1.0]])


def test_mixed_libraries_are_rejected(backend):
    x, _ = arrays(backend)
    if backend.name == "numpy":
        import array_api_strict

        other = array_api_strict.ones((2, 2))
    else:
        other = np.ones((2, 2))
    with pytest.raises(TypeError, match=r"x and k must come from the same array library"):
        xcorr.corr2d(x, other)
    with pytest.raises(TypeError, match=r"x and k must come from the same array library"):
        xcorr.corr2d(other, x)


def test_integer_result_rejects_fractional_fillvalue(backend):
    x, k = arrays(backend, dtype="int64")
    with pytest.raises(ValueError, match=r"fillvalue 0.5 cannot be represented in the integer result dtype"):
        xcorr.corr2d(x, k, mode="same", fillvalue=0.5)


def test_two_devices_are_rejected():
    torch = require_module("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device to put the arrays on two devices")
    with pytest.raises(ValueError, match=r"same device"):
        xcorr.corr2d(torch.ones(4, 4), torch.ones(2, 2, device="cuda"))


# (function, shapes of the positional operands, keywords, takes a bias)
_PREPARED_CASES = [
    ("corr2d", ((5, 6), (3, 3)), {}, False),
    ("corr2d_multi", ((1, 2, 5, 6), (4, 2, 3, 3)), {}, True),
    ("corr2d_multi", ((1, 5, 6, 2), (4, 2, 3, 3)), {"data_format": "channels_last"}, True),
    ("corr1d_multi", ((1, 2, 9), (4, 2, 3)), {}, True),
    ("corr1d_multi", ((1, 2, 9), (4, 2, 3)), {"padding": (2, 1)}, True),
    ("corr3d_multi", ((1, 2, 4, 5, 6), (4, 2, 3, 3, 3)), {}, True),
    ("corr2d_vjp", ((5, 6), (3, 3), (3, 4)), {}, False),
    ("corr2d_multi_vjp", ((1, 5, 6, 2), (4, 2, 3, 3), (1, 3, 4, 4)), {"data_format": "channels_last"}, False),
    ("corr1d_vjp", ((9,), (3,), (7,)), {}, False),
    ("corr1d_multi_vjp", ((1, 2, 9), (4, 2, 3), (1, 4, 7)), {}, False),
    ("conv3d_vjp", ((4, 5, 6), (3, 3, 3), (2, 3, 4)), {}, False),
    ("corr3d_multi_vjp", ((1, 2, 4, 5, 6), (4, 2, 3, 3, 3), (1, 4, 2, 3, 4)), {}, False),
]


@pytest.mark.parametrize(
    ("function", "shapes", "keywords", "moved"),
    [
        (function, shapes, keywords, moved)
        for function, shapes, keywords, bias in _PREPARED_CASES
        for moved in (*range(len(shapes)), *(["bias"] if bias else []))
    ],
)
def test_a_prepared_call_checks_the_devices_again(function, shapes, keywords, moved):
    """A signature's second call (its checks done by the first) still refuses operands on two
    devices, before any backend call: torch's "meta" device holds tensors of one type, shape and
    dtype on another device, without a GPU."""
    torch = require_module("torch")
    operands = [torch.ones(shape) for shape in shapes]
    if moved == "bias":
        keywords = {**keywords, "bias": torch.ones(shapes[1][0])}
    fn = getattr(xcorr, function)
    fn(*operands, **keywords)  # prepares the signature
    if moved == "bias":
        keywords = {**keywords, "bias": keywords["bias"].to("meta")}
    else:
        operands[moved] = operands[moved].to("meta")
    with pytest.raises(ValueError, match=r"must be on the same device; got (cpu and meta|meta and cpu)"):
        fn(*operands, **keywords)


@pytest.mark.parametrize(
    ("function", "shapes", "keywords"),
    [(function, shapes, keywords) for function, shapes, keywords, _ in _PREPARED_CASES if function.endswith("_vjp")],
)
def test_a_prepared_vjp_checks_its_output_gradient_again(function, shapes, keywords):
    """A VJP's signature includes its output gradient's: after a call that prepared it, a ``g`` of
    another shape or dtype is refused, naming the shape expected, as on a first call."""
    x, k, g = (np.ones(shape) for shape in shapes)
    fn = getattr(xcorr, function)
    fn(x, k, g, **keywords)  # prepares the signature
    wrong = np.ones((*g.shape[:-1], g.shape[-1] + 1))
    with pytest.raises(ValueError, match=r"g must have the shape"):
        fn(x, k, wrong, **keywords)
    gx, gk = fn(x, k, g.astype(np.float32), **keywords)  # another dtype: its own checks, its own result
    assert (gx.dtype, gk.dtype) == (np.float64, np.float64)


def test_errors_come_before_backend_work(monkeypatch):
    # A failing check must fire before the dispatch reaches any adapter.
    import xcorr._call as public

    def forbidden(*args, **kwargs):
        raise AssertionError("reached the backend")

    monkeypatch.setattr(public, "adapter_for", forbidden)
    with pytest.raises(ValueError, match="larger than x"):
        xcorr.corr2d(np.ones((2, 2)), np.ones((3, 3)))


LIMIT = r"2\*\*31 - 1 = 2147483647"


def _no_backend_work(monkeypatch):
    """Reaching an adapter fails the test: the size checks must come before them."""
    from xcorr import _call, _multi, _vjp

    def forbidden(*args, **kwargs):
        raise AssertionError("reached the backend")

    for module in (_call, _multi, _vjp):  # the modules that look adapters up
        monkeypatch.setattr(module, "adapter_for", forbidden)


@pytest.mark.parametrize(
    ("x_shape", "k_shape", "options", "match"),
    [
        ((5, 5), (3, 3), {"padding": 2**40}, rf"padding=.*1099511627776 is beyond .*{LIMIT} per axis"),
        ((5, 5), (3, 3), {"padding": ((0, 0), (2**31, 0))}, rf"padding=.*2147483648 is beyond .*{LIMIT}"),
        ((5, 5), (3, 3), {"stride": 2**62}, rf"stride=.*4611686018427387904 is beyond .*{LIMIT}"),
        ((5, 5), (3, 3), {"stride": (1, 2**31)}, rf"stride=\(1, 2147483648\).*{LIMIT}"),
        ((5, 5), (3, 3), {"dilation": 2**40, "mode": "same"}, rf"dilation=.*1099511627776 is beyond .*{LIMIT}"),
        ((5, 5), (3, 3), {"dilation": 2**30, "mode": "full"}, r"dilated kernel's extent \(2147483649, 2147483649\)"),
        ((5, 5), (3, 3), {"padding": 2**30}, r"x extended by the boundary would have shape \(2147483653, 2147483653\)"),
        ((5, 5), (2, 2), {"padding": "SAME", "stride": 2**31}, rf"stride=.*2147483648 is beyond .*{LIMIT}"),
        # 2**24 broadcast planes of 8193 x 8197: over 2**50 elements.
        ((4096, 1, 1, 5), (4096, 1, 1), {"padding": 4096}, r"would have shape \(4096, 4096, 8193, 8197\).*2\*\*48"),
      ],
    ids=["padding", "padding-one-side", "stride", "stride-columns", "dilation", "dilated-extent", "extended",
         "SAME-stride", "elements"],
)
def test_absurd_sizes_are_named_before_any_backend_work(backend, monkeypatch, x_shape, k_shape, options, match):
    """Sizes no backend can allocate or index (XLA aborted, torch's as_strided overflowed, dask's graph
    never finished) are a ValueError naming the argument, its value and the limit, before any adapter."""
    _no_backend_work(monkeypatch)
    x, k = arrays(backend, x_shape, k_shape)
    for f in (xcorr.corr2d, xcorr.conv2d):
        with pytest.raises(ValueError, match=match):
            f(x, k, **options)
    with pytest.raises(ValueError, match=match):
        xcorr.corr2d_vjp(x, k, x, **options)
    with pytest.raises(ValueError, match=match):
        xcorr.corr2d_jvp(x, k, x, None, **options)
    if len(x_shape) == 2:
        xm, wm = backend.asarray(np.ones((1, 1, *x_shape))), backend.asarray(np.ones((1, 1, *k_shape)))
        with pytest.raises(ValueError, match=match):
            xcorr.corr2d_multi(xm, wm, **options)
        with pytest.raises(ValueError, match=match):
            xcorr.corr2d_multi_vjp(xm, wm, xm, **options)


def test_absurd_transposed_sizes_are_named_before_any_backend_work(backend, monkeypatch):
    _no_backend_work(monkeypatch)
    x, w = backend.asarray(np.ones((1, 1, 5, 5))), backend.asarray(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=rf"stride \(1073741824, 1\).*\(4294967299, 7\) before the crop.*{LIMIT}"):
        xcorr.conv_transpose2d(x, w, stride=(2**30, 1))
    with pytest.raises(ValueError, match=rf"stride \(4611686018427387904, 4611686018427387904\).*{LIMIT}"):
        xcorr.conv_transpose2d(x, w, stride=2**62)
    with pytest.raises(ValueError, match=rf"dilation \(1, 1073741824\).*{LIMIT}"):
        xcorr.corr2d_transpose(x[0, 0, ...], w[0, 0, ...], dilation=(1, 2**30))
    with pytest.raises(ValueError, match=LIMIT):
        xcorr.conv_transpose2d_vjp(x, w, x, stride=2**40)
    # 4096 inputs of 65536 output channels, 4097 x 4097 each: over 2**51 elements, as in 1-D and 3-D
    xn, wc = backend.asarray(np.ones((4096, 1, 2, 2))), backend.asarray(np.ones((1, 2**16, 1, 1)))
    elements = r"the output of shape \(4096, 65536, 4097, 4097\) is beyond xcorr's limit of 2\*\*48"
    with pytest.raises(ValueError, match=elements):
        xcorr.conv_transpose2d(xn, wc, stride=2**12)
    last = r"the output of shape \(4096, 4097, 4097, 65536\) is beyond xcorr's limit of 2\*\*48"
    with pytest.raises(ValueError, match=last):  # shown in the layout the call asked for
        xcorr.conv_transpose2d(backend.asarray(np.ones((4096, 2, 2, 1))), wc, stride=2**12, data_format="channels_last")
    with pytest.raises(ValueError, match=r"shape \(4096, 65536, 16777217\) is beyond"):
        xcorr.conv_transpose1d(backend.asarray(np.ones((4096, 1, 2))), wc[..., 0], stride=2**24)
    with pytest.raises(ValueError, match=r"shape \(4096, 16777217, 65536\) is beyond"):
        xcorr.conv_transpose1d(backend.asarray(np.ones((4096, 2, 1))), wc[..., 0], stride=2**24, data_format="channels_last")
    x3, w3 = backend.asarray(np.ones((4096, 2, 2, 2, 1))), backend.asarray(np.ones((1, 2**16, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"shape \(4096, 257, 257, 257, 65536\) is beyond"):
        xcorr.conv_transpose3d(x3, w3, stride=2**8, data_format="channels_last")


def test_layers_name_absurd_padding_before_any_backend_work(monkeypatch):
    _no_backend_work(monkeypatch)
    layer = xcorr.Conv2D(2, in_channels=1, out_channels=1, padding=2**40, backend="numpy")
    with pytest.raises(ValueError, match=rf"padding=.*1099511627776 is beyond .*{LIMIT}"):
        layer(np.ones((1, 1, 5, 5)))


def test_dask_graph_of_a_wide_padding_follows_the_input_chunks():
    """A padding of many chunks (3000 around a 5 x 5 chunk) widens the output blocks instead of making
    one per five output rows (over a million blocks: the graph never finished for padding=100_000)."""
    da = require_module("dask.array")
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal((5, 5)), rng.standard_normal((3, 3))
    y = xcorr.corr2d(da.from_array(x, chunks=5), da.asarray(k), padding=3000)
    assert y.shape == (6003, 6003)
    assert max(y.numblocks) <= 18
    padded = np.pad(x, 3)
    centre = np.array([[np.sum(padded[i : i + 3, j : j + 3] * k) for j in range(7)] for i in range(7)])
    np.testing.assert_allclose(y[2997:3004, 2997:3004].compute(), centre, rtol=1e-12, atol=1e-12)
    assert not np.any(y[:2997].compute())
    y = xcorr.corr2d(da.from_array(x, chunks=5), da.asarray(k), padding=100_000)
    assert max(y.numblocks) <= 18


def _unknown_rows(da, a):
    """``a`` as a dask array whose first axis has unknown (NaN) chunk sizes, as after boolean indexing."""
    lazy = da.from_array(a, chunks=2)
    unknown = lazy[lazy.reshape(a.shape[0], -1)[:, 0] > -1]
    assert np.isnan(unknown.shape[0])
    return unknown


def test_unknown_dask_chunk_sizes_are_named_before_any_graph(monkeypatch):
    """Unknown (NaN) sizes reached dask's internals ("Need array(s) to concatenate", "cannot convert
    float NaN to integer"): one ValueError naming the argument, its shape and compute_chunk_sizes()."""
    da = require_module("dask.array")
    _no_backend_work(monkeypatch)
    x2, k2 = np.ones((8, 8)), np.ones((2, 2))
    x4, w4 = np.ones((2, 3, 8, 8)), np.ones((4, 3, 2, 2))
    xu, xu4 = _unknown_rows(da, x2), _unknown_rows(da, x4)
    k, w, wt = da.asarray(k2), da.asarray(w4), da.asarray(np.ones((3, 4, 2, 2)))

    calls = [
        (lambda: xcorr.corr2d(xu, k), "x"),
        (lambda: xcorr.conv2d(xu, k, mode="same"), "x"),
        (lambda: xcorr.corr2d_multi(xu4, w), "x"),
        (lambda: xcorr.corr2d_transpose(xu, k), "x"),
        (lambda: xcorr.conv_transpose2d(xu4, wt), "x"),
        (lambda: xcorr.corr2d_vjp(xu, k, da.ones((7, 7))), "x"),
        (lambda: xcorr.corr2d_vjp(da.asarray(x2), k, _unknown_rows(da, np.ones((7, 7)))), "g"),
        (lambda: xcorr.corr2d_multi_vjp(xu4, w, da.ones((2, 4, 7, 7))), "x"),
        (lambda: xcorr.conv_transpose2d_vjp(xu4, wt, da.ones((2, 4, 9, 9))), "x"),
        (lambda: xcorr.corr2d_jvp(xu, k, xu, None), "x"),
        (lambda: xcorr.corr2d_jvp(da.asarray(x2), k, _unknown_rows(da, x2), None), "dx"),
        (lambda: xcorr.corr2d_multi_jvp(xu4, w, None, w), "x"),
        (lambda: xcorr.Conv2D(2, backend="dask")(xu), "x"),
    ]
    for call, name in calls:
        match = rf"{name} has unknown sizes along some axes \(shape \(nan, .*compute_chunk_sizes\(\)"
        with pytest.raises(ValueError, match=match):
            call()
    # Once the sizes are computed, the same call runs.
    monkeypatch.undo()
    y = xcorr.corr2d(xu.compute_chunk_sizes(), k)
    np.testing.assert_allclose(y.compute(), np.full((7, 7), 4.0))


def test_vjp_and_jvp_refuse_the_fillvalues_corr2d_refuses(backend):
    """corr2d_vjp in "valid" mode (no fill reached) and corr2d_jvp along dx alone (whose term runs with
    the fill's linear part, 0) took fillvalues that corr2d refuses: the same ValueError now."""
    x, k = arrays(backend)
    xi, ki = arrays(backend, dtype="uint8")
    cases = [
        (x, k, 1j, r"fillvalue 1j is complex but the result dtype .*float64 is real"),
        (xi, ki, 300, r"fillvalue 300 is out of the range of the integer result dtype .*uint8 \[0, 255\]"),
        (xi, ki, -1, r"fillvalue -1 is out of the range of the integer result dtype .*uint8 \[0, 255\]"),
        (xi, ki, 0.5, r"fillvalue 0.5 cannot be represented in the integer result dtype .*uint8"),
    ]
    for a, b, fill, match in cases:
        for mode in ("valid", "same"):
            with pytest.raises(ValueError, match=match):
                xcorr.corr2d(a, b, mode=mode, fillvalue=fill)
            g = xcorr.corr2d(a, b, mode=mode)
            for vjp in (xcorr.corr2d_vjp, xcorr.conv2d_vjp):
                with pytest.raises(ValueError, match=match):
                    vjp(a, b, g, mode=mode, fillvalue=fill)
            for jvp in (xcorr.corr2d_jvp, xcorr.conv2d_jvp):
                for dx, dk in ((a, None), (None, b), (a, b)):
                    with pytest.raises(ValueError, match=match):
                        jvp(a, b, dx, dk, mode=mode, fillvalue=fill)


def test_multi_jvp_names_a_2d_channels_last_x(backend, monkeypatch):
    """corr2d_multi_jvp with data_format="channels_last" and a 2-D x failed inside the library
    ("axes don't match array", a sparse-permute error): the named shape error of corr2d_multi."""
    _no_backend_work(monkeypatch)
    x, w = backend.asarray(np.ones((5, 6))), backend.asarray(np.ones((1, 1, 2, 2)))
    match = r'x must have shape \(N, H, W, C\) or \(H, W, C\) with data_format="channels_last"; got shape \(5, 6\)'
    for call in (
        lambda: xcorr.corr2d_multi(x, w, data_format="channels_last"),
        lambda: xcorr.corr2d_multi_vjp(x, w, x, data_format="channels_last"),
        lambda: xcorr.corr2d_multi_jvp(x, w, x, None, data_format="channels_last"),
        lambda: xcorr.corr2d_multi_jvp(x, w, None, w, data_format="channels_last"),
    ):
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize(
    "options",
    [{}, {"in_channels": 1, "out_channels": 2}, {"in_channels": 1, "out_channels": 2, "data_format": "channels_last"}],
    ids=["plain", "channels", "channels-last"],
)
def test_layer_called_on_a_python_list(backend, options):
    """A layer called on a list raised AttributeError ('list' object has no attribute 'shape')."""
    from test_layer import layer_for

    layer = layer_for(backend, 2, **options)
    with pytest.raises(TypeError, match=r"(x must be an array of an array-API library.*|expected a torch\.Tensor as input,) got list"):
        layer([[[1.0, 2.0, 3.0]] * 3] * 3)
    transposed = xcorr.Conv2DTranspose(2, in_channels=1, out_channels=1, backend=layer_for(backend, 2).spec.backend)
    with pytest.raises(TypeError, match=r"(x must be an array of an array-API library.*|expected a torch\.Tensor as input,) got list"):
        transposed([[[1.0, 2.0, 3.0]] * 3])


def test_layer_refuses_bias_init_without_a_bias(backend):
    from test_layer import layer_for

    for init in ("zeros", "normal"):
        with pytest.raises(ValueError, match=rf"bias_init='{init}' given with bias=False: the layer has no bias"):
            layer_for(backend, 2, bias=False, bias_init=init)
        with pytest.raises(ValueError, match=rf"bias_init='{init}' given with bias=False"):
            xcorr.Conv2DTranspose(
                2, in_channels=1, out_channels=1, bias=False, bias_init=init, backend=layer_for(backend, 2).spec.backend
            )
    assert layer_for(backend, 2, bias=False).bias is None  # without bias_init: accepted, as before
    assert layer_for(backend, 2, bias=True, bias_init="zeros").bias is not None


# -- fillvalue out of an integer dtype's range -------------------------------------------------


@pytest.mark.parametrize(("dtype", "fillvalue", "bounds"), [("int32", 1e10, "[-2147483648, 2147483647]"), ("uint8", -1, "[0, 255]")])
def test_fillvalue_out_of_an_integer_range_is_refused(backend, dtype, fillvalue, bounds):
    xp = backend.xp
    if not hasattr(xp, dtype):
        pytest.skip(f"{backend} has no {dtype}")
    x = backend.asarray(np.ones((4, 5)), dtype=dtype)
    k = backend.asarray(np.ones((2, 2)), dtype=dtype)
    with pytest.raises(ValueError, match=rf"fillvalue {fillvalue!r} is out of the range .*{dtype}.*{bounds}".replace("[", r"\[").replace("]", r"\]")):
        xcorr.corr2d(x, k, mode="full", fillvalue=fillvalue)


# -- numpy masked arrays, seeds, TorchScript ---------------------------------------------------


def test_masked_arrays_are_refused_with_how_to_fill_them():
    x = np.ma.masked_array(np.ones((4, 4)), mask=np.eye(4, dtype=bool))
    with pytest.raises(TypeError, match=r"x is a numpy masked array .*x\.filled\(0\)"):
        xcorr.corr2d(x, np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"k is a numpy masked array"):
        xcorr.corr2d(np.ones((4, 4)), np.ma.masked_array(np.ones((2, 2))))
    filled = np.where(np.eye(4, dtype=bool), 0.0, 1.0)
    np.testing.assert_array_equal(xcorr.corr2d(x.filled(0), np.ones((2, 2))), xcorr.corr2d(filled, np.ones((2, 2))))


def test_negative_seed_error_names_seed():
    with pytest.raises(ValueError, match=r"seed must be a non-negative int .*got -1"):
        xcorr.Conv2D(3, seed=-1)


@pytest.mark.parametrize("channels", [False, True], ids=["single-plane", "channels"])
def test_torchscript_is_refused_with_a_clear_error(channels):
    torch = require_module("torch")
    import io
    import warnings

    if channels:
        layer = xcorr.Conv2D(3, in_channels=2, out_channels=4, backend="torch")
        x = torch.randn(2, 2, 8, 8)
    else:
        layer = xcorr.Conv2D(3, backend="torch")
        x = torch.randn(8, 8)
    eager = layer(x)
    match = r"xcorr does not support TorchScript .*torch\.compile"
    with warnings.catch_warnings():
        # TorchScript's own deprecation notices, and the tracer's warnings about
        # the shape checks that run before the refusal of a plain corr2d call
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with pytest.raises(RuntimeError, match=match):
            torch.jit.trace(layer, (x,))
        with pytest.raises(RuntimeError, match=match):
            torch.jit.script(layer)
        with pytest.raises(RuntimeError, match=match):
            torch.onnx.export(layer, (x,), io.BytesIO(), dynamo=False)
        with pytest.raises(RuntimeError, match=match):
            torch.jit.trace(lambda x: xcorr.corr2d(x, torch.ones(3, 3)), (torch.randn(8, 8),))
    assert torch.equal(layer(x), eager)  # the layer still works eagerly
