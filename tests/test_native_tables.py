"""The natives' own configurations (issue 23): every Conv1d, Conv3d, ConvTranspose1d and ConvTranspose3d
entry of torch's module test tables (``torch/testing/_internal/common_nn.py``, shipped in the torch wheel),
and a fixed-seed sample of the 1-D and 3-D analogues of jax's ``lax_test.py`` convolution grids
(``testConvGeneralDilated``, ``testConvTranspose1D``), each against the native's own output, in float64."""

from __future__ import annotations

import functools
import itertools
import json

import array_api_compat
import numpy as np
import pytest

import xcorr

from matrix import THINNED, TOL, backend_grid, backends_where, check, layout, require_module, run_python
from test_layer_1d_3d import gradients, layer_for

torch = require_module("torch")

# --- torch's module test tables -----------------------------------------------------

# Read in a fresh interpreter: common_nn imports torch's whole test harness (common_utils, which needs
# expecttest, a torch-development package stubbed here where missing) and reseeds torch's global RNG.
# Each entry's module is built as torch's own ModuleTest builds it, and its hyper-parameters are read
# back from the module, so that constructor_args and constructor=lambda entries are read alike.
TABLE_SCRIPT = """
    import json, sys, types, unittest
    try:
        import expecttest  # noqa: F401
    except ImportError:
        stub = types.ModuleType("expecttest")
        stub.TestCase = unittest.TestCase
        sys.modules["expecttest"] = stub
    import torch
    from torch.testing._internal import common_nn

    KINDS = ("Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose3d")
    found = []
    for entry in [*common_nn.module_tests, *common_nn.get_new_module_tests()]:
        entry = dict(entry)
        if entry.get("module_name") not in KINDS and (entry.get("fullname") or "").split("_")[0] not in KINDS:
            continue
        entry.setdefault("constructor", getattr(torch.nn, entry.get("module_name", ""), None))
        test = common_nn.NewModuleTest(**entry)
        module = test.constructor(*test.constructor_args)
        found.append({
            "name": test.get_name().removeprefix("test_"), "kind": type(module).__name__,
            "input_size": list(entry["input_size"]), "in_channels": module.in_channels,
            "out_channels": module.out_channels, "kernel_size": module.kernel_size, "stride": module.stride,
            "padding": module.padding, "dilation": module.dilation, "groups": module.groups,
            "bias": module.bias is not None, "padding_mode": module.padding_mode,
            "output_padding": module.output_padding,
        })
    print(json.dumps(found))
"""

# Every entry of the tables (torch 2.13), by ModuleTest's name; a new one fails the listing test below.
ENTRIES = (
    "Conv1d", "Conv1d_stride", "Conv1d_pad1", "Conv1d_pad2", "Conv1d_pad1size1", "Conv1d_pad2size1",
    "Conv1d_zero_batch", "Conv1d_dilated", "Conv1d_groups", "Conv1d_pad_valid", "Conv1d_pad_same",
    "Conv1d_pad_same2", "Conv1d_pad_same_dilated", "ConvTranspose1d", "ConvTranspose1d_no_bias",
    "ConvTranspose1d_dilated", "ConvTranspose1d_groups", "Conv3d", "Conv3d_no_bias", "Conv3d_1x1x1_no_bias",
    "Conv3d_stride", "Conv3d_stride_padding", "Conv3d_zero_batch", "Conv3d_groups", "Conv3d_dilated",
    "Conv3d_dilated_strided", "Conv3d_pad_valid", "Conv3d_pad_same", "Conv3d_pad_same_dilated",
    "ConvTranspose3d", "ConvTranspose3d_dilated", "Conv1d_reflect_stride2_pad2", "Conv1d_circular_stride2_pad2",
    "Conv3d_circular_stride2_pad2", "Conv1d_replicate_stride2_pad2", "Conv3d_replicate_stride2_pad2",
    "Conv1d_zeros_stride2_pad2", "Conv3d_zeros_stride2_pad2",
)  # fmt: skip

# Entries xcorr refuses, with the error it must raise (empty: xcorr runs every entry).
REFUSED: dict[str, tuple[type[Exception], str]] = {}

LAYERS = {
    "Conv1d": xcorr.Conv1D,
    "Conv3d": xcorr.Conv3D,
    "ConvTranspose1d": xcorr.Conv1DTranspose,
    "ConvTranspose3d": xcorr.Conv3DTranspose,
}


@functools.cache
def torch_table() -> dict[str, dict]:
    """The conv entries of torch's tables, by name (read once per session, in a subprocess)."""
    found = json.loads(run_python(TABLE_SCRIPT, timeout=180).splitlines()[-1])
    return {entry["name"]: entry for entry in found}


def test_the_tables_hold_exactly_the_listed_entries():
    names = [entry["name"] for entry in torch_table().values()]
    assert len(names) == len(set(names)), names
    assert set(names) == set(ENTRIES), (
        f"new in torch's tables: {sorted(set(names) - set(ENTRIES))}; gone: {sorted(set(ENTRIES) - set(names))}"
    )
    assert set(REFUSED) <= set(ENTRIES)


def native_module(entry: dict):
    """The torch module of ``entry`` (float64), its parameters seeded."""
    torch.manual_seed(sum(map(ord, entry["name"])))
    keywords = {k: entry[k] for k in ("stride", "padding", "dilation", "groups", "bias")}
    keywords["padding"] = keywords["padding"] if isinstance(keywords["padding"], str) else tuple(keywords["padding"])
    if entry["kind"].startswith("ConvTranspose"):
        keywords["output_padding"] = tuple(entry["output_padding"])
    else:
        keywords["padding_mode"] = entry["padding_mode"]
    cls = getattr(torch.nn, entry["kind"])
    return cls(entry["in_channels"], entry["out_channels"], tuple(entry["kernel_size"]), dtype=torch.float64, **keywords)


def xcorr_keywords(entry: dict) -> dict:
    """``entry``'s module as keywords of xcorr's layer: torch's own values (torch's padding_mode names
    are xcorr's boundary names too), one int per axis for 1-D."""
    one = len(entry["kernel_size"]) == 1

    def axes(value):
        return value if isinstance(value, str) else (value[0] if one else tuple(value))

    keywords = {k: axes(entry[k]) for k in ("stride", "padding", "dilation")}
    keywords |= {"in_channels": entry["in_channels"], "out_channels": entry["out_channels"]}
    keywords |= {"groups": entry["groups"], "bias": entry["bias"], "dtype": "float64"}
    if entry["kind"].startswith("ConvTranspose"):
        keywords["output_padding"] = axes(entry["output_padding"])
    elif entry["padding_mode"] != "zeros":
        keywords["boundary"] = entry["padding_mode"]
    return {"kernel": axes(entry["kernel_size"]), **keywords}


def native_reference(module, x, g):
    """``(y, gx, gw, gb)`` of the torch module at ``x`` with output gradient ``g`` (autograd)."""
    xt = torch.tensor(x, requires_grad=True)
    y = module(xt)
    (y * torch.tensor(g)).sum().backward()
    gb = None if module.bias is None else module.bias.grad.numpy()
    return y.detach().numpy(), xt.grad.numpy(), module.weight.grad.numpy(), gb


def constant(value):
    """An initializer (``weight_init``/``bias_init``) that returns ``value``, checking the shape asked."""

    def init(shape, dtype, rng):
        assert tuple(shape) == value.shape, (shape, value.shape)
        return value

    return init


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")  # torch's, for its copy
@pytest.mark.parametrize(("backend", "name"), backend_grid(ENTRIES, cases=12), indirect=["backend"])
def test_torch_table_entry(backend, name):
    entry = torch_table()[name]
    module = native_module(entry)
    rng = np.random.default_rng(sum(map(ord, name)))
    x = rng.standard_normal(entry["input_size"])
    y_ref = module(torch.tensor(x)).detach().numpy()
    g = rng.standard_normal(y_ref.shape)
    expected = native_reference(module, x, g)
    keywords = xcorr_keywords(entry)
    kernel, cls = keywords.pop("kernel"), LAYERS[entry["kind"]]
    weight = module.weight.detach().numpy()
    bias = None if module.bias is None else module.bias.detach().numpy()
    if name in REFUSED:
        error, match = REFUSED[name]
        with pytest.raises(error, match=match):
            layer_for(backend, kernel, cls=cls, **keywords)(backend.asarray(x))
        return
    inits = {"weight_init": constant(weight)} | ({} if bias is None else {"bias_init": constant(bias)})
    if backend.name == "torch":  # the state_dict of torch's module loads as it is
        layer = layer_for(backend, kernel, cls=cls, **keywords)
        layer.load_state_dict(module.state_dict())
    else:
        layer = layer_for(backend, kernel, cls=cls, **keywords, **inits)
    check(backend, layer(backend.asarray(x)), y_ref)
    if backend.traced or backend.name in THINNED:  # each new configuration compiles (jax) or builds a graph (dask)
        return
    got = gradients(backend, layer, x, g)
    for label, a, b in zip(("y", "gx", "gw", "gb"), got, expected, strict=True):
        if label == "gx" and a is None:  # the array layers give the parameters' gradients only
            continue
        assert (a is None) == (b is None), label
        if b is not None:
            assert a.shape == b.shape, (label, a.shape, b.shape)
            np.testing.assert_allclose(a, b, **TOL, err_msg=label)


# --- jax's lax_test.py grids, in 1-D and 3-D ------------------------------------------

# testConvGeneralDilated's grid (2-D there: lhs (b, i*G, 9, w), rhs (j*G, i, 4, 5)) on one and three
# spatial axes: every product of the axes below, less what xcorr has no form for, sampled with a fixed
# seed. batch_group_count is out of scope (xcorr has none). An lhs_dilation s > 1 is xcorr's transposed
# convolution (conv_transpose1d / conv_transpose3d, stride s, the kernel flipped and its channel axes
# swapped), which crops its uncropped output: lax's padding pairs map onto it while the window stride
# is 1 and each pad is at most the dilated kernel's extent less one (a crop of 0 or more).
SPATIAL = {1: ((10,), (4,)), 3: ((5, 6, 4), (2, 3, 2))}
DIMENSION_NUMBERS = {
    1: (("NCH", "OIH", "NCH"), ("NHC", "HIO", "NHC"), ("NCH", "HIO", "NHC")),
    3: (("NCDHW", "OIDHW", "NCDHW"), ("NDHWC", "DHWIO", "NDHWC"), ("NCDHW", "DHWIO", "NDHWC")),
}
PADDINGS = {
    1: ("VALID", "SAME", ((1, 2),), ((10, 8),)),
    3: ("VALID", "SAME", ((1, 2), (2, 0), (0, 1)), ((4, 3), (3, 5), (2, 2))),
}
STRIDES = {1: ((1,), (2,)), 3: ((1, 1, 1), (2, 1, 2))}
SAMPLE = 16  # per dimensionality: with TRANSPOSE_SAMPLE, 40 cases (the whole file runs in about a minute)
TRANSPOSE_SAMPLE = 4


def _mappable(dims, padding, lhs_dilation, rhs_dilation, strides) -> bool:
    if lhs_dilation == 1:
        return True
    if isinstance(padding, str):  # lax refuses it too ("String padding is not implemented for transposed ...")
        return False
    extents = [rhs_dilation * (k - 1) for k in SPATIAL[dims][1]]
    return set(strides) == {1} and all(0 <= p <= e for (lo, hi), e in zip(padding, extents) for p in (lo, hi))


@functools.cache
def lax_cases() -> tuple[dict, ...]:
    """The sample of the grids (the same on every run), 1-D and 3-D cases in turn."""
    rng = np.random.default_rng(23)
    cases = []
    for dims in (1, 3):
        grid = [
            {"op": "conv_general_dilated", "dims": dims, "b": b, "i": i, "j": j, "kernel": SPATIAL[dims][1],
             "groups": groups, "strides": strides, "padding": padding, "lhs_dilation": lhs_dilation,
             "rhs_dilation": rhs_dilation, "dn": dn}
            for (b, i, j), groups, strides, padding, lhs_dilation, rhs_dilation, dn in itertools.product(
                itertools.product((2, 3), repeat=3), (1, 2), STRIDES[dims], PADDINGS[dims], (1, 2), (1, 2),
                DIMENSION_NUMBERS[dims])
            if _mappable(dims, padding, lhs_dilation, rhs_dilation, strides)
        ]  # fmt: skip
        cases.append([grid[k] for k in sorted(rng.choice(len(grid), SAMPLE, replace=False))])
    # testConvTranspose1D's grid (lhs (b, 10, i), rhs (k, i, j), "NHC", "HIO", "NHC", transpose_kernel
    # False) and its 3-D analogue: lax.conv_transpose is conv_general_dilated with lhs_dilation = strides.
    for dims, dn, spatial in ((1, ("NHC", "HIO", "NHC"), (10,)), (3, ("NDHWC", "DHWIO", "NDHWC"), (4, 5, 3))):
        grid = [
            {"op": "conv_transpose", "dims": dims, "b": b, "i": i, "j": j, "kernel": (k,) * dims, "groups": 1,
             "strides": (1,) * dims, "padding": padding, "lhs_dilation": s, "rhs_dilation": rhs_dilation, "dn": dn,
             "spatial": spatial}
            for (b, i, j), k, s, padding, rhs_dilation in itertools.product(
                itertools.product((2, 3), repeat=3), (3, 4, 5) if dims == 1 else (2, 3), (1, 2, 3), ("VALID", "SAME"),
                (1, 2))
        ]  # fmt: skip
        cases.append([grid[k] for k in sorted(rng.choice(len(grid), TRANSPOSE_SAMPLE, replace=False))])
    general = [case for pair in zip(*cases[:2], strict=True) for case in pair]
    transposes = [case for pair in zip(*cases[2:], strict=True) for case in pair]
    step = len(general) // len(transposes)  # one lax.conv_transpose case after every `step` others
    return tuple(case for k, t in enumerate(transposes) for case in (*general[k * step : (k + 1) * step], t))


def lax_case_id(case: dict) -> str:
    pad = case["padding"] if isinstance(case["padding"], str) else "p" + "".join(f"{lo}{hi}" for lo, hi in case["padding"])
    if case["op"] == "conv_transpose":
        return (
            f"transpose-{case['dims']}d-b{case['b']}i{case['i']}j{case['j']}-k{case['kernel'][0]}-s{case['lhs_dilation']}"
            f"-{pad}-rhs{case['rhs_dilation']}"
        )
    return (
        f"{case['dims']}d-b{case['b']}i{case['i']}j{case['j']}-G{case['groups']}-s{''.join(map(str, case['strides']))}"
        f"-{pad}-lhs{case['lhs_dilation']}-rhs{case['rhs_dilation']}-{','.join(case['dn'])}"
    )


LAX_CASES = {lax_case_id(case): case for case in lax_cases()}
# jax.grad of both sides costs two compilations per case: the first case of each form (lax's op, 1-D or
# 3-D, an lhs_dilation or none) has its gradients checked.
GRADIENT_CASES = tuple(
    {(c["op"], c["dims"], c["op"] != "conv_transpose" and c["lhs_dilation"] > 1): ident
     for ident, c in reversed(LAX_CASES.items())}.values()
)


def _to(spec: str, canonical: str, a: np.ndarray) -> np.ndarray:
    """``a`` laid out as ``canonical`` (e.g. "NCH"), transposed to ``spec`` ("NHC")."""
    return np.transpose(a, [canonical.index(c) for c in spec])


def lax_operands(case: dict):
    """``(lhs, rhs)`` in xcorr's layouts: lhs (N, C, *spatial) and rhs (O, I, *spatial), float64."""
    rng = np.random.default_rng(len(lax_case_id(case)))
    spatial = case.get("spatial", SPATIAL[case["dims"]][0])
    g, i = case["groups"], case["i"]
    lhs = rng.standard_normal((case["b"], i * g, *spatial))
    rhs = rng.standard_normal((case["j"] * g, i, *case["kernel"]))
    return lhs, rhs


@functools.cache
def lax_reference(ident: str, gradients: bool = False):
    """jax's own result for case ``ident``, channels first: ``y``, or ``(y, g, glhs, grhs)`` with
    ``g`` an output gradient and the gradients of ``sum(y * g)`` (jax.grad)."""
    jax = require_module("jax")
    case = LAX_CASES[ident]
    lhs, rhs = lax_operands(case)
    lhs_spec, rhs_spec, out_spec = case["dn"]
    spatial, dims = lhs_spec.replace("N", "").replace("C", ""), case["dims"]
    first, oi = "NC" + spatial, "OI" + spatial

    def conv(lhs, rhs):  # lhs (N, C, ...) and rhs (O, I, ...), into and out of the case's layouts
        lhs = jax.numpy.transpose(lhs, [first.index(c) for c in lhs_spec])
        rhs = jax.numpy.transpose(rhs, [oi.index(c) for c in rhs_spec])
        if case["op"] == "conv_transpose":
            y = jax.lax.conv_transpose(
                lhs, rhs, (case["lhs_dilation"],) * dims, case["padding"], rhs_dilation=(case["rhs_dilation"],) * dims,
                dimension_numbers=case["dn"], precision=jax.lax.Precision.HIGHEST,
            )  # fmt: skip
        else:
            y = jax.lax.conv_general_dilated(
                lhs, rhs, case["strides"], case["padding"], (case["lhs_dilation"],) * dims,
                (case["rhs_dilation"],) * dims, dimension_numbers=case["dn"], feature_group_count=case["groups"],
                precision=jax.lax.Precision.HIGHEST,
            )  # fmt: skip
        return jax.numpy.transpose(y, [out_spec.index(c) for c in first])

    y = np.asarray(jax.jit(conv)(lhs, rhs))  # one compilation, not one per transpose
    if not gradients:
        return y
    g = np.random.default_rng(1).standard_normal(y.shape)
    glhs, grhs = jax.jit(jax.grad(lambda a, b: (conv(a, b) * g).sum(), argnums=(0, 1)))(lhs, rhs)
    return y, g, np.asarray(glhs), np.asarray(grhs)


def xcorr_conv(case: dict, x, w, last: bool):
    """xcorr's form of the case on ``x`` (the lhs, channels-last where ``last``) and ``w`` (the rhs
    (O, I, ...)), arrays of any backend: ``corr1d_multi``/``corr3d_multi``, or for an lhs_dilation
    ``conv_transpose1d``/``conv_transpose3d`` of the kernel flipped with its channel axes swapped per
    group, lax's pads as crops of its uncropped output."""
    dims, padding, groups, dilation = case["dims"], case["padding"], case["groups"], case["rhs_dilation"]
    one = dims == 1
    data_format = "channels_last" if last else "channels_first"
    if case["op"] == "conv_general_dilated" and case["lhs_dilation"] == 1:
        correlate = xcorr.corr1d_multi if one else xcorr.corr3d_multi
        strides = case["strides"][0] if one else case["strides"]
        pad = padding[0] if one and not isinstance(padding, str) else padding
        return correlate(x, w, stride=strides, padding=pad, dilation=dilation, groups=groups, data_format=data_format)
    if isinstance(padding, str):  # lax.conv_transpose's "SAME" and "VALID", xcorr's for transposed forms
        crops = padding
    else:
        extents = [dilation * (k - 1) for k in w.shape[2:]]
        crops = [(e - lo, e - hi) for (lo, hi), e in zip(padding, extents, strict=True)]
        crops = crops[0] if one else tuple(crops)
    xp = array_api_compat.array_namespace(w)
    o, i, kernel = w.shape[0], w.shape[1], tuple(w.shape[2:])
    flipped = xp.reshape(xp.flip(w, axis=tuple(range(2, 2 + dims))), (groups, o // groups, i, *kernel))
    swapped = xp.permute_dims(flipped, (0, 2, 1, *range(3, 3 + dims)))
    transposed = xp.reshape(swapped, (groups * i, o // groups, *kernel))
    transpose = xcorr.conv_transpose1d if one else xcorr.conv_transpose3d
    return transpose(x, transposed, stride=case["lhs_dilation"], padding=crops,
                     dilation=dilation, groups=groups, data_format=data_format)  # fmt: skip


# On the traced backends (jax) every case compiles xcorr's calls anew: they run a diagonal, as dask does.
THIN = (*THINNED, *(b.name for b in backends_where(lambda b: b.traced)))


@pytest.mark.parametrize(("backend", "ident"), backend_grid(LAX_CASES, cases=10, thinned=THIN), indirect=["backend"])
def test_lax_conv_general_dilated_sample(backend, ident):
    case = LAX_CASES[ident]
    lhs, rhs = lax_operands(case)
    last = case["dn"][0].endswith("C")
    y = xcorr_conv(case, backend.asarray(layout(lhs, last)), backend.asarray(rhs), last)
    check(backend, y, layout(lax_reference(ident), last))


AUTODIFF = backends_where(lambda b: b.adapter.autodiff)


@pytest.mark.parametrize(
    ("backend", "ident"), [p for p in backend_grid(GRADIENT_CASES) if p.values[0] in AUTODIFF], indirect=["backend"]
)
def test_lax_conv_general_dilated_sample_gradients(backend, ident):
    case = LAX_CASES[ident]
    lhs, rhs = lax_operands(case)
    last = case["dn"][0].endswith("C")
    y_ref, g, glhs, grhs = lax_reference(ident, gradients=True)
    xb, wb, gb = (backend.asarray(a) for a in (layout(lhs, last), rhs, layout(g, last)))
    if backend.library == "torch":
        xb, wb = xb.clone().requires_grad_(True), wb.clone().requires_grad_(True)
        y = xcorr_conv(case, xb, wb, last)
        (y * gb).sum().backward()
        gx, gw = xb.grad, wb.grad
    else:
        jax = require_module("jax")

        def both(a, b):  # one compilation for the forward and both gradients
            return xcorr_conv(case, a, b, last), jax.grad(lambda a, b: (xcorr_conv(case, a, b, last) * gb).sum(), argnums=(0, 1))(a, b)

        y, (gx, gw) = jax.jit(both)(xb, wb)
    check(backend, y, layout(y_ref, last))
    check(backend, gx, layout(glhs, last))
    check(backend, gw, grhs)


# --- an empty batch (torch's Conv3d_zero_batch) on the 3-D functions themselves ---------


@pytest.mark.parametrize("last", [False, True], ids=["channels_first", "channels_last"])
def test_3d_functions_take_an_empty_batch(backend, last):
    # The non-native 3-D paths cut volumes into planes and back, which divided by the batch size
    # (ZeroDivisionError) and asked dask for a reshape it cannot do on empty arrays.
    rng = np.random.default_rng(0)
    x, w, wt = np.zeros((0, 2, 4, 5, 3)), rng.standard_normal((3, 2, 2, 3, 2)), rng.standard_normal((2, 3, 2, 3, 2))
    data_format = "channels_last" if last else "channels_first"
    xt = torch.tensor(x, requires_grad=True)
    y_ref = torch.nn.functional.conv3d(xt, torch.tensor(w), stride=(1, 2, 1))
    yt_ref = torch.nn.functional.conv_transpose3d(xt, torch.tensor(wt), stride=(2, 1, 2), padding=(0, 1, 0))
    xb, wb, wtb = (backend.asarray(a) for a in (layout(x, last), w, wt))
    y = xcorr.corr3d_multi(xb, wb, stride=(1, 2, 1), data_format=data_format)
    check(backend, y, layout(y_ref.detach().numpy(), last))
    yt = xcorr.conv_transpose3d(xb, wtb, stride=(2, 1, 2), padding=(0, 1, 0), data_format=data_format)
    check(backend, yt, layout(yt_ref.detach().numpy(), last))
    gx, gw = xcorr.corr3d_multi_vjp(xb, wb, y, stride=(1, 2, 1), data_format=data_format)
    check(backend, gx, layout(x, last))
    check(backend, gw, np.zeros_like(w))  # no sample: torch's weight gradient is zeros too
    gx, gw = xcorr.conv_transpose3d_vjp(xb, wtb, yt, stride=(2, 1, 2), padding=(0, 1, 0), data_format=data_format)
    check(backend, gx, layout(x, last))
    check(backend, gw, np.zeros_like(wt))
    # The 1-D and 2-D VJPs' kernel gradients, which torch and jax took as a convolution of 0 groups.
    for one in (True, False):
        xs, ks = (x[..., 0, 0], w[..., 0, 0]) if one else (x[..., 0], w[..., 0])
        vjp = xcorr.corr1d_multi_vjp if one else xcorr.corr2d_multi_vjp
        xsb = backend.asarray(layout(xs, last))
        g = (xcorr.corr1d_multi if one else xcorr.corr2d_multi)(xsb, backend.asarray(ks), data_format=data_format)
        gx, gw = vjp(xsb, backend.asarray(ks), g, data_format=data_format)
        check(backend, gx, layout(xs, last))
        check(backend, gw, np.zeros_like(ks))
