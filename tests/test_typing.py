"""The typed public API: annotations, the Literal option types, Conv2D's signature, and mypy.

``mypy`` over ``xcorr/`` itself runs as its own CI step (configured in
pyproject.toml); here a user's script must pass ``mypy --strict`` against
xcorr's annotations, and a misspelt mode in it must be reported.
"""

from __future__ import annotations

import ast
import inspect
import os
import pydoc
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import xcorr
from xcorr import _cost_model, _fit, _layer, _layer_spec, _options, _padding, _typing

from matrix import require_module

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "typecheck" / "user_script.py"


def test_option_literals_name_what_the_parsers_accept():
    # One list of names each, as the type checker and the run-time check see them.
    assert typing.get_args(_typing.Mode) == _padding.MODES
    assert set(typing.get_args(_typing.Boundary)) == set(_options.BOUNDARY_ALIASES)
    assert typing.get_args(_typing.Method) == _cost_model.METHODS
    assert typing.get_args(_typing.Loss) == _fit.LOSSES
    assert _options.Mode is _typing.Mode and _options.Boundary is _typing.Boundary


def _public_callables():
    for name in xcorr.__all__:
        obj = getattr(xcorr, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield name, obj  # the constructor
            for attr, member in vars(obj).items():
                if inspect.isfunction(member) and not attr.startswith("_"):
                    yield f"{name}.{attr}", member


@pytest.mark.parametrize(("name", "obj"), list(_public_callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_api_is_annotated(name, obj):
    sig = inspect.signature(obj)
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.annotation is inspect.Parameter.empty and p.name not in ("self", "cls")
    ]
    assert not missing, f"{name}{sig}: parameters without annotations: {missing}"
    if not inspect.isclass(obj):
        assert sig.return_annotation is not inspect.Signature.empty, f"{name}{sig} has no return annotation"


def test_conv2d_signature_is_the_constructors():
    sig = inspect.signature(xcorr.Conv2D)
    params = sig.parameters
    assert next(iter(params)) == "kernel_size"
    assert params["kernel_size"].kind is inspect.Parameter.POSITIONAL_ONLY
    expected = {"in_channels", "out_channels", "mode", "boundary", "stride", "dilation", "groups", "bias",
                "backend", "dtype", "method", "seed"}  # fmt: skip
    assert expected <= set(params)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in params.items() if n != "kernel_size")
    assert params["mode"].default == "valid" and params["seed"].default == 0
    assert typing.get_args(params["mode"].annotation) == _padding.MODES
    # every backend's class shows the same parameters, and help() prints them
    assert inspect.signature(_layer.ArrayConv2D) == sig
    first_lines = pydoc.render_doc(xcorr.Conv2D, renderer=pydoc.plaintext).splitlines()[:5]
    assert any("Conv2D(kernel_size" in line for line in first_lines), first_lines
    assert not any("*args" in line for line in first_lines), first_lines
    # the backend's class accepts each of them at its default
    defaults = {n: p.default for n, p in params.items() if n != "kernel_size"}
    layer = xcorr.Conv2D(2, **defaults)
    assert type(layer) is _layer.ArrayConv2D and layer.kernel_size == (2, 2)


def test_a_layer_keeps_the_signature_of_its_call():
    layer = xcorr.Conv2D(2, backend="numpy")
    assert list(inspect.signature(layer).parameters) == ["x"]


def _static_new(name="Conv2D"):
    """The ``__new__`` overloads a type checker sees (under ``if TYPE_CHECKING`` in class ``name``):
    ``{"torch": ..., "other": ...}``, the first for ``backend="torch"`` (a torch.nn.Module)."""
    tree = ast.parse(Path(sys.modules[getattr(xcorr, name).__module__].__file__).read_text())
    (cls,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    overloads = {}
    for node in cls.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__new__" and item.decorator_list:
                    assert [ast.unparse(d) for d in item.decorator_list] == ["overload"]
                    overloads["torch" if ast.unparse(item.returns).startswith("Torch") else "other"] = item.args
    assert set(overloads) == {"torch", "other"}, f"class {name}: __new__ overloads under `if TYPE_CHECKING`"
    return overloads


@pytest.mark.parametrize("overload", ["other", "torch"])
@pytest.mark.parametrize("layer", ["Conv2D", "Conv2DTranspose", "Conv1D", "Conv3D", "Conv1DTranspose", "Conv3DTranspose"])
def test_the_type_checkers_layer_takes_the_run_time_parameters(layer, overload):
    # The layers' __new__ takes *args, **kwargs at run time, so type checkers read a
    # declaration; a parameter added to the spec's parse must be added there too.
    spec_class = getattr(xcorr, layer)._spec_class
    args = _static_new(layer)[overload]
    torch_backend = overload == "torch"
    static = [(a.arg, inspect.Parameter.POSITIONAL_ONLY, None, a.annotation) for a in args.posonlyargs[1:]]
    static += [
        (a.arg, inspect.Parameter.KEYWORD_ONLY, None if d is None else ast.literal_eval(d), a.annotation)
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    # the torch overload: backend="torch" is required there, its type a torch.nn.Module
    assert [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None] == (["backend"] if torch_backend else [])
    assert not args.args and args.vararg is None and args.kwarg is None
    runtime = _layer_spec.constructor_signature(spec_class).parameters
    assert inspect.signature(getattr(xcorr, layer)) == _layer_spec.constructor_signature(spec_class)
    assert [(n, k) for n, k, _, _ in static] == [(p.name, p.kind) for p in runtime.values()]
    unevaluated = inspect.signature(spec_class.parse).parameters
    extra = {"seed": "int", "weight_init": "Initializer | None", "bias_init": "Initializer | None"}
    for name, _, default, annotation in static:
        if torch_backend and name == "backend":
            assert ast.unparse(annotation) == "Literal['torch']"
            continue
        if name != "kernel_size":
            assert default == runtime[name].default, name
        expected = extra[name] if name in extra else unevaluated[name].annotation
        assert ast.unparse(annotation) == expected, name


@pytest.fixture(scope="module")
def mypy_check(tmp_path_factory):
    """``mypy --strict`` on one file as a user's project would run it: xcorr's own modules are
    followed for their types but not reported on (as for an installed package)."""
    api = require_module("mypy.api")
    work = tmp_path_factory.mktemp("mypy")
    config = work / "mypy.ini"
    # xcorr from this checkout: an editable install's import hook is invisible to mypy
    config.write_text(f"[mypy]\nmypy_path = {ROOT}\n\n[mypy-xcorr,xcorr.*]\nfollow_imports = silent\n")

    def check(path):
        out, err, status = api.run(
            [str(path), "--strict", "--config-file", str(config), "--cache-dir", str(work / "cache")]
        )
        return status, out + err

    return check


@pytest.mark.slow
def test_user_script_passes_mypy_strict_and_runs(mypy_check):
    status, report = mypy_check(SCRIPT)
    assert status == 0, report
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("weight [[1.0, -1.0]]"), run.stdout


@pytest.mark.slow
def test_mypy_flags_a_misspelt_mode(mypy_check, tmp_path):
    source = SCRIPT.read_text()
    assert source.count('mode="valid"') == 1
    typo = tmp_path / "user_script_typo.py"
    typo.write_text(source.replace('mode="valid"', 'mode="smae"'))
    status, report = mypy_check(typo)
    assert status == 1, report
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert len(errors) == 1, report
    assert 'Argument "mode" to "corr2d" has incompatible type "Literal[\'smae\']"' in errors[0], report
    assert "Literal['valid', 'same', 'full']" in errors[0], report


TORCH_SCRIPT = """\\
import torch

import xcorr

layer = xcorr.Conv2D(3, in_channels=1, out_channels=2, backend="torch")
optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
y: torch.Tensor = layer(torch.ones(1, 1, 5, 5))
net = torch.nn.Sequential(layer, torch.nn.ReLU())
up = xcorr.Conv2DTranspose(2, in_channels=2, out_channels=1, stride=2, backend="torch")
z: torch.Tensor = up(y)
seq = xcorr.Conv1D(3, in_channels=1, out_channels=2, padding="causal", backend="torch")
vol = xcorr.Conv3D(3, in_channels=1, out_channels=2, padding=1, backend="torch")
s: torch.Tensor = seq(torch.ones(1, 1, 8)) + vol(torch.ones(1, 1, 4, 4, 4)).sum()
more = torch.optim.SGD([*seq.parameters(), *vol.parameters()], lr=0.1)
print(sum(p.numel() for p in net.parameters()), tuple(z.shape))
"""


def _editable_links() -> Path | None:
    """The plain path this environment's editable install of xcorr puts on sys.path (None if none)."""
    from importlib import metadata

    # (every distribution named xcorr: the checkout's own xcorr.egg-info may come first)
    files = [f for d in metadata.distributions(name="xcorr") for f in d.files or []]
    (pth,) = [f for f in files if f.name.endswith(".links.pth")] or [None]
    return None if pth is None else Path(pth.locate().read_text().strip())


@pytest.mark.slow
def test_mypy_sees_the_editable_install_and_the_torch_layer_is_a_module(tmp_path):
    # `python -m pip install -e .` (the README's command; build_backend/xcorr_build.py): no
    # mypy_path here, mypy finds xcorr as a user's project would, from outside the checkout.
    require_module("mypy")
    require_module("torch")
    links = _editable_links()
    if links is None:
        if os.environ.get("CI"):
            pytest.fail("xcorr is not installed with `python -m pip install -e .` from this checkout")
        pytest.skip("xcorr's editable install predates build_backend/xcorr_build.py: run `pip install -e .` again")
    assert (links / "xcorr" / "__init__.py").resolve() == ROOT / "xcorr" / "__init__.py"
    script = tmp_path / "user_torch.py"
    script.write_text(TORCH_SCRIPT + 'numpy_layer = xcorr.Conv2D(3, backend="numpy")\nnumpy_layer.parameters()\n')
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "-v", "--no-incremental", "--cache-dir", os.devnull, script.name],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False,
    )
    # xcorr is this checkout's, through the install's link tree
    parsed = re.findall(r"(\S+/xcorr/__init__\.py)\b", run.stderr)
    assert parsed and {Path(p).resolve() for p in parsed} == {ROOT / "xcorr" / "__init__.py"}, run.stderr[-3000:]
    # the one error: a numpy layer is not a torch.nn.Module; the torch layers are, with no error
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    line = len(TORCH_SCRIPT.splitlines()) + 2
    assert errors == [f'{script.name}:{line}: error: "Conv2D" has no attribute "parameters"  [attr-defined]'], run.stdout
    ran = subprocess.run(
        [sys.executable, "-c", TORCH_SCRIPT], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert ran.stdout.split() == ["20", "(1,", "1,", "6,", "6)"], ran.stderr
