"""A torch user's habits on torch-backend layers (issue 22): the errors nn.Conv2d gives, and xcorr's spelling.

Inputs that ``nn.Conv2d`` refuses (a numpy array, a list, a tensor of another
dtype) are refused with the same kind of exception and the fix in the message;
nn.Conv2d's and Keras' constructor spellings are refused with the xcorr call
that means the same, which these tests run and compare with torch's layer.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import xcorr

from matrix import require_module

torch = require_module("torch")


@pytest.fixture(autouse=True)
def _torch_backend(monkeypatch):
    monkeypatch.setenv("XCORR_BACKEND", "torch")
    # the suggested calls name no backend: they build torch layers here


def _layer(**kwargs):
    return xcorr.Conv2D(3, in_channels=2, out_channels=4, backend="torch", **kwargs)


def _error(fn, *args, **kwargs):
    with pytest.raises(Exception) as info:  # the type is compared with torch's by the callers
        fn(*args, **kwargs)
    return info.value


def _suggestion(err: Exception) -> str:
    """The call after "did you mean" in ``err``'s message."""
    match = re.search(r"did you mean (xcorr\.\w+\(.*\)(?:\.to\(.*\))?)\?$", str(err))
    assert match, str(err)
    return match.group(1)


# -- inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [np.ones, lambda shape: np.ones(shape).tolist()], ids=["numpy", "list"])
def test_non_tensor_input_is_a_type_error_with_the_conversion(make):
    layer = _layer()
    x = make((1, 2, 6, 6))
    err = _error(layer, x)
    # nn.Conv2d refuses it with a TypeError too
    assert type(err) is type(_error(torch.nn.Conv2d(2, 4, 3), x)) is TypeError
    assert "expected a torch.Tensor" in str(err)
    fix = str(err).rpartition("convert with ")[2]
    converted = eval(fix, {"torch": torch, "x": x})  # the message's fix runs and gives the layer's dtype
    assert converted.dtype == layer.weight.dtype
    torch.testing.assert_close(layer(converted), layer(torch.ones(1, 2, 6, 6)))


def test_numpy_input_of_the_layer_dtype_is_converted_without_a_cast():
    err = _error(_layer(), np.ones((1, 2, 6, 6), dtype=np.float32))
    assert str(err).endswith("convert with torch.from_numpy(x)")
    err = _error(xcorr.Conv2D(3, backend="torch"), np.ones((6, 6)))  # the seed's single-plane layer too
    assert str(err).endswith("convert with torch.from_numpy(x).to(torch.float32)")


@pytest.mark.parametrize("dtype", ["float64", "int64", "bfloat16", "float16", "int32", "bool"])
@pytest.mark.parametrize("bias", [True, False])
def test_another_dtype_raises_as_nn_conv2d_does(dtype, bias):
    layer = _layer(bias=bias)
    x = torch.ones(1, 2, 6, 6, dtype=getattr(torch, dtype))
    native = torch.nn.Conv2d(2, 4, 3, bias=bias)
    err = _error(layer, x)
    # nn.Conv2d's is a RuntimeError (a NotImplementedError, its subclass, for bool without a bias)
    assert type(err) is RuntimeError and isinstance(_error(native, x), RuntimeError)
    assert f"Input type ({dtype}) and {'bias' if bias else 'weight'} type (float32) should be the same" in str(err)
    assert "x.to(torch.float32)" in str(err)
    native.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x.to(torch.float32)), native(x.to(torch.float32)))  # the first fix
    if x.is_floating_point():  # the second: the layer in the input's dtype
        method = {"float64": "double", "bfloat16": "bfloat16", "float16": "half"}[dtype]
        assert f"layer.{method}()" in str(err)
        assert getattr(layer, method)()(x).dtype == x.dtype
    else:
        assert "layer.to(" not in str(err)


def test_float64_input_under_autocast_raises_as_nn_conv2d_does():
    layer, native = _layer(), torch.nn.Conv2d(2, 4, 3)
    x = torch.ones(1, 2, 6, 6, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        err = _error(layer, x)
        assert type(err) is type(_error(native, x)) is RuntimeError
        assert layer(x.float()).dtype == native(x.float()).dtype == torch.bfloat16  # valid input: unchanged


def test_the_layer_dtype_still_computes():
    layer = _layer(dtype="float64")
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64)
    native = torch.nn.Conv2d(2, 4, 3, dtype=torch.float64)
    native.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), native(x))


def test_transposed_layer_checks_its_input_too():
    layer = xcorr.Conv2DTranspose(3, in_channels=2, out_channels=4, backend="torch")
    native = torch.nn.ConvTranspose2d(2, 4, 3)
    x = torch.ones(1, 2, 5, 5, dtype=torch.float64)
    assert type(_error(layer, x)) is type(_error(native, x)) is RuntimeError
    assert type(_error(layer, x.numpy())) is TypeError


# -- constructors ------------------------------------------------------------------------

TORCH_CALLS = [
    ((2, 4, 3), {}),
    ((2, 4, 3), {"padding": 2, "padding_mode": "replicate"}),  # 2: "symm" would differ
    ((2, 4, 3, 2, 1), {"padding_mode": "reflect"}),
    ((2, 4, (3, 2)), {"padding": (1, 2), "padding_mode": "circular", "dilation": 2}),
    ((2, 4, 3, 1, 1, 1, 2, False, "replicate"), {}),
    ((2, 4, 3), {"padding": "same"}),
]


@pytest.mark.parametrize(("args", "kwargs"), TORCH_CALLS)
def test_nn_conv2d_spelling_is_refused_with_the_xcorr_call_that_equals_it(args, kwargs):
    err = _error(xcorr.Conv2D, *args, **kwargs)
    assert type(err) is TypeError
    assert "xcorr.Conv2D takes kernel_size first" in str(err)
    if kwargs.get("padding_mode", args[8] if len(args) > 8 else "zeros") != "zeros":
        assert "padding_mode=" in str(err) and "boundary=" in str(err)
    layer = eval(_suggestion(err), {"xcorr": xcorr})  # a torch layer: XCORR_BACKEND=torch (the fixture)
    native = torch.nn.Conv2d(*args, **kwargs)
    native.load_state_dict(layer.state_dict())
    x = torch.randn(2, 2, 9, 10)
    torch.testing.assert_close(layer(x), native(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("mode", "boundary"), [("replicate", "edge"), ("reflect", "reflect"), ("circular", "wrap")])
def test_padding_mode_keyword_names_the_boundary(mode, boundary):
    err = _error(xcorr.Conv2D, 3, in_channels=2, out_channels=4, padding=2, padding_mode=mode)
    assert f"padding_mode={mode!r} is boundary={boundary!r} in xcorr" in str(err)
    layer = eval(_suggestion(err), {"xcorr": xcorr})
    native = torch.nn.Conv2d(2, 4, 3, padding=2, padding_mode=mode)
    native.load_state_dict(layer.state_dict())
    x = torch.randn(1, 2, 7, 8)
    torch.testing.assert_close(layer(x), native(x), rtol=1e-5, atol=1e-6)


def test_an_unknown_padding_mode_lists_torchs():
    err = _error(xcorr.Conv2D, 3, padding_mode="symmetric")
    assert type(err) is ValueError and "'zeros', 'reflect', 'replicate', 'circular'" in str(err)


def test_conv_transpose2d_spelling():
    args = (2, 4, 3, 2, 1, 1)
    err = _error(xcorr.Conv2DTranspose, *args)
    assert type(err) is TypeError and "nn.ConvTranspose2d's order" in str(err)
    layer = eval(_suggestion(err), {"xcorr": xcorr})
    native = torch.nn.ConvTranspose2d(*args)
    native.load_state_dict(layer.state_dict())
    x = torch.randn(1, 2, 5, 6)
    torch.testing.assert_close(layer(x), native(x), rtol=1e-5, atol=1e-6)
    err = _error(xcorr.Conv2DTranspose, 3, in_channels=2, out_channels=4, padding_mode="reflect")
    assert type(err) is ValueError and "'zeros'" in str(err)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((8, 3), {}), ((3,), {"filters": 8}), ((8, 3), {"strides": 2, "padding": "same", "use_bias": False})],
)
def test_keras_spelling_names_xcorrs(args, kwargs):
    err = _error(xcorr.Conv2D, *args, **kwargs)
    assert type(err) is TypeError and "filters= (Keras) is out_channels= in xcorr" in str(err)
    call = _suggestion(err)
    assert "in_channels=<input channels>" in call and "data_format='channels_last'" in call
    layer = eval(call.replace("<input channels>", "3"), {"xcorr": xcorr})
    assert layer.out_channels == 8 and layer.kernel_size == (3, 3)
    assert layer.stride == ((2, 2) if "strides" in kwargs else (1, 1)) and (layer.bias is None) == ("use_bias" in kwargs)
    assert layer(torch.ones(1, 12, 12, 3)).shape[-1] == 8


def test_kernel_size_keyword_and_device():
    err = _error(xcorr.Conv2D, in_channels=2, out_channels=4, kernel_size=3)
    assert "takes kernel_size as its first, positional argument" in str(err)
    assert _suggestion(err) == "xcorr.Conv2D(3, in_channels=2, out_channels=4)"
    err = _error(xcorr.Conv2D, 3, in_channels=2, out_channels=4, device="cpu")
    assert _suggestion(err) == "xcorr.Conv2D(3, in_channels=2, out_channels=4).to('cpu')"
    assert eval(_suggestion(err), {"xcorr": xcorr}).weight.device.type == "cpu"


def test_valid_calls_are_unchanged():
    layer = xcorr.Conv2D(3, in_channels=2, out_channels=4, padding=1, boundary="edge")
    assert isinstance(layer, torch.nn.Module) and layer.boundary == "edge"


# -- docs/coming-from/torch.md -----------------------------------------------------------

PAGE = Path(__file__).resolve().parents[1] / "docs" / "coming-from" / "torch.md"


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_the_torch_page_names_the_exact_boundary(mode):
    # the page's row for F.pad's mode: both sides run, on a padding where "symm" and "edge" differ
    (row,) = [line for line in PAGE.read_text().splitlines() if line.startswith(f'| `F.conv2d(F.pad(x, (2, 2, 1, 1), mode="{mode}")')]
    theirs, ours = re.findall(r"`([^`]+)`", row)[:2]
    x, w = torch.randn(2, 3, 7, 9, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64)
    scope = {"F": torch.nn.functional, "xcorr": xcorr, "x": x, "w": w}
    torch.testing.assert_close(eval(ours, scope), eval(theirs, scope))
    assert ('boundary="edge"' if mode == "replicate" else 'boundary="reflect"') in ours


def test_the_torch_page_quotes_the_constructor_error():
    text = " ".join(PAGE.read_text().split())
    err = _error(xcorr.Conv2D, 3, 8, 3)
    assert f"`TypeError: {err}`" in text
