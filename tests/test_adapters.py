"""The adapter contract: one ``xcorr.Adapter`` per library, a public registry, a core that names no framework."""

from __future__ import annotations

import ast
import inspect
import pathlib
import re
import types

import array_api_compat
import array_api_compat.numpy
import numpy as np
import pytest

import xcorr

from matrix import CPU_BACKENDS
from reference import random, reference

XCORR = pathlib.Path(xcorr.__file__).parent
FRAMEWORKS = ("torch", "jax", "jaxlib", "dask", "cupy", "numba", "scipy", "array_api_strict")


# ---------------------------------------------------------------------------
# A library xcorr does not ship: numpy arrays behind a wrapper type of their own
# ---------------------------------------------------------------------------


class ToyArray:
    """An array type with its own namespace (``toyarrays``), backed by numpy."""

    def __init__(self, a):
        self._a = np.asarray(a)

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    device = "cpu"
    mT = property(lambda self: ToyArray(np.swapaxes(self._a, -1, -2)))

    def __array_namespace__(self, api_version=None):
        return toy

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._a, dtype=dtype)

    def __getitem__(self, index):
        return ToyArray(self._a[_unwrap(index)])

    def __float__(self):
        return float(self._a)

    def __bool__(self):
        return bool(self._a)

    def __repr__(self):
        return f"ToyArray({self._a!r})"


def _unwrap(value):
    if isinstance(value, ToyArray):
        return value._a
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value):
    if isinstance(value, np.ndarray) or (isinstance(value, np.generic) and not isinstance(value, np.dtype)):
        return ToyArray(value)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    return value


def _operator(name):
    def method(self, *args):
        return _wrap(getattr(self._a, name)(*_unwrap(args)))

    return method


for _name in ("add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "neg", "pow", "gt", "lt", "ne", "eq"):
    setattr(ToyArray, f"__{_name}__", _operator(f"__{_name}__"))


def _namespace_function(name):
    target = getattr(array_api_compat.numpy, name)
    if not callable(target) or isinstance(target, type):
        return target

    def function(*args, **kwargs):
        return _wrap(target(*_unwrap(args), **_unwrap(kwargs)))

    function.__name__ = name
    return function


toy = types.ModuleType("toyarrays")
toy.__getattr__ = _namespace_function  # PEP 562: every array-API name, on numpy underneath
toy.fft = types.SimpleNamespace(
    **{name: (lambda f: lambda *a, **k: _wrap(f(*_unwrap(a), **_unwrap(k))))(getattr(np.fft, name))
       for name in ("rfftn", "irfftn", "fftn", "ifftn")}
)


class ToyAdapter(xcorr.Adapter):
    """The generic adapter, counting what the core asks of it."""

    name = "toyarrays"

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def namespace(self):
        return toy

    def correlate(self, xp, x, k, options, geometry):
        self.calls.append("correlate")
        return super().correlate(xp, x, k, options, geometry)

    def kernel_gradient(self, xp, x, k, g, options, geometry, method):
        self.calls.append("kernel_gradient")
        return super().kernel_gradient(xp, x, k, g, options, geometry, method)


@pytest.fixture
def toy_adapter():
    adapter = ToyAdapter()
    xcorr.register_adapter(toy, adapter)
    xcorr.register_adapter("toyarrays", adapter)
    yield adapter
    xcorr.unregister_adapter(toy)
    xcorr.unregister_adapter("toyarrays")


@pytest.mark.parametrize("options", [{}, {"mode": "same", "boundary": "symm"}, {"mode": "full", "stride": 2}])
def test_registered_adapter_serves_corr2d(toy_adapter, options):
    x, k = random((7, 9)), random((3, 2), seed=1)
    y = xcorr.corr2d(ToyArray(x), ToyArray(k), **options)
    assert isinstance(y, ToyArray)
    assert xcorr.adapter_for(toy) is toy_adapter
    assert toy_adapter.calls == ["correlate"]
    np.testing.assert_allclose(np.asarray(y), reference(x, k, **options), rtol=1e-12, atol=1e-12)


def test_registered_adapter_serves_the_vjp(toy_adapter):
    x, k, g = random((6, 8)), random((2, 3), seed=1), random((5, 6), seed=2)
    gx, gk = xcorr.corr2d_vjp(ToyArray(x), ToyArray(k), ToyArray(g))
    assert isinstance(gx, ToyArray) and isinstance(gk, ToyArray)
    assert "kernel_gradient" in toy_adapter.calls
    # The VJP is the transpose: <corr(x, k), g> is linear in each operand.
    np.testing.assert_allclose(np.sum(np.asarray(gk) * k), np.sum(reference(x, k) * g), rtol=1e-12)
    np.testing.assert_allclose(np.sum(np.asarray(gx) * x), np.sum(reference(x, k) * g), rtol=1e-12)


def test_registered_adapter_serves_conv2d_layer_and_fit(toy_adapter):
    layer = xcorr.Conv2D((1, 2), backend="toyarrays", dtype="float64")
    assert isinstance(layer, xcorr.Conv2D) and isinstance(layer.weight, ToyArray)
    numpy_layer = xcorr.Conv2D((1, 2), backend="numpy", dtype="float64")
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    np.testing.assert_array_equal(np.asarray(layer(ToyArray(x))), numpy_layer(x))
    y = reference(x, np.array([[1.0, -1.0]]))
    layer, losses = xcorr.fit(layer, ToyArray(x), ToyArray(y), lr=0.01, steps=50)
    np.testing.assert_allclose(np.asarray(layer.weight), [[1.0, -1.0]], atol=0.05)
    assert losses[-1] < losses[0] / 100


def test_register_adapter_rejects_non_adapters():
    with pytest.raises(TypeError, match=r"adapter must be an instance of xcorr\.Adapter"):
        xcorr.register_adapter(toy, object())


# ---------------------------------------------------------------------------
# Every shipped adapter keeps the contract's signatures
# ---------------------------------------------------------------------------

CONTRACT = {
    name: member
    for name, member in vars(xcorr.Adapter).items()
    if callable(member) and not name.startswith("_")
}


def test_contract_documents_every_operation():
    for name, member in CONTRACT.items():
        assert inspect.getdoc(member), f"Adapter.{name} has no docstring"


def _parameters(function):
    """Names, kinds and defaults of a function's parameters (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize("backend", CPU_BACKENDS, ids=str)
def test_adapter_overrides_keep_the_contract_signatures(backend):
    backend.require()
    adapter = xcorr.adapter_for(backend.xp)
    assert isinstance(adapter, xcorr.Adapter)
    assert adapter.name == backend.name
    for name, member in CONTRACT.items():
        override = getattr(type(adapter), name)
        if override is member:
            continue
        assert _parameters(override) == _parameters(member), (
            f"{type(adapter).__name__}.{name}{inspect.signature(override)} differs from the contract "
            f"Adapter.{name}{inspect.signature(member)}"
        )


@pytest.mark.parametrize("backend", CPU_BACKENDS, ids=str)
def test_adapter_converts_to_and_from_numpy(backend):
    backend.require()
    adapter = xcorr.adapter_for(backend.xp)
    a = random((3, 4))
    b = adapter.from_numpy(a, device=adapter.device("gpu" if backend.gpu else "cpu"))
    assert array_api_compat.array_namespace(b) is backend.xp
    assert array_api_compat.device(b) == array_api_compat.device(backend.asarray(np.zeros(1)))
    np.testing.assert_array_equal(adapter.to_numpy(b), a)


# ---------------------------------------------------------------------------
# The core names no framework
# ---------------------------------------------------------------------------


def _code_names(path: pathlib.Path) -> list[tuple[int, str]]:
    """Framework names in code: imports, names, identifiers with a framework word, and strings that are nothing but library names
    (``backend == "jax"``, ``{"torch": ...}``, ``"numpy+numba"``); prose in messages and
    docstrings may name libraries."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words = set(re.split(r"[^A-Za-z0-9_]+", node.value)) - {""}
            if words and words <= {*FRAMEWORKS, "numpy"} and words & set(FRAMEWORKS):
                found.append((node.lineno, node.value))
        elif isinstance(node, ast.Name) and node.id in FRAMEWORKS:
            found.append((node.lineno, node.id))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
            found += [(node.lineno, n) for n in names if n.split(".")[0] in FRAMEWORKS]
        for name in _identifiers(node):
            if set(name.lower().strip("_").split("_")) & set(FRAMEWORKS):
                found.append((node.lineno, name))
    return found


def _identifiers(node: ast.AST) -> list[str]:
    """The names that ``node`` defines or reads as words of an identifier (``plan.torch_padding``,
    ``def _torch_weight``, ``jax_options=``): a framework's knowledge hides in them too."""
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, ast.keyword) and node.arg:
        return [node.arg]
    if isinstance(node, ast.Name) and node.id not in FRAMEWORKS:
        return [node.id]
    return []


def _registry_table_lines() -> range:
    source = (XCORR / "_registry.py").read_text().splitlines()
    start = next(i for i, line in enumerate(source) if line.startswith("LIBRARIES"))
    end = next(i for i in range(start, len(source)) if source[i] == ")")
    return range(start + 1, end + 2)

LAYER_MODULES = ("_layer.py", "_layer_1d.py", "_layer_3d.py", "_layer_nd_transpose.py")


def _type_checker_view_lines(name: str = "_layer.py") -> set[int]:
    """The ``if TYPE_CHECKING:`` blocks of a layer module (``LAYER_MODULES``): the torch.nn.Module
    that a type checker sees of ``Conv2D(backend="torch")`` (issue 22) and the overloads that return
    it. They never run."""
    tree = ast.parse((XCORR / name).read_text())
    blocks = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    ]
    assert blocks, f"{name} has no TYPE_CHECKING block: drop this exception"
    return {line for block in blocks for line in range(block.lineno, block.end_lineno + 1)}


def test_core_names_no_framework_outside_the_registry_table():
    table = _registry_table_lines()
    typing_views = {name: _type_checker_view_lines(name) for name in LAYER_MODULES}
    offenders = []
    for path in sorted(XCORR.rglob("*.py")):
        for line, name in _code_names(path):
            if (path.name == "_registry.py" and line in table) or line in typing_views.get(path.name, ()):
                continue
            offenders.append(f"{path.name}:{line}: {name}")
    assert not offenders, "framework names in the core:\n" + "\n".join(offenders)


# ---------------------------------------------------------------------------
# Optional fast paths can be deleted
# ---------------------------------------------------------------------------

OPTIONAL = ("_numba.py", "_numba_kernels.py", "_numba_backward.py", "_numba_cache.py", "_jax_numba.py", "_hugepages.py")


def test_library_works_with_the_optional_fast_paths_deleted(tmp_path):
    import shutil
    import subprocess
    import sys

    package = tmp_path / "xcorr"
    shutil.copytree(XCORR, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(XCORR.parent / "backends", package / "backends", ignore=shutil.ignore_patterns("__pycache__", *OPTIONAL))
    assert not any((package / "backends" / name).exists() for name in OPTIONAL)
    code = """
import sys
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import torch
import xcorr
assert xcorr.__file__.startswith(sys.argv[1]), xcorr.__file__
rng = np.random.default_rng(0)
x, k = rng.standard_normal((300, 300)), rng.standard_normal((3, 3))
want = xcorr.corr2d(x, k, mode="same", method="fft")
for y in (xcorr.corr2d(x, k, mode="same"), xcorr.corr2d(torch.asarray(x), torch.asarray(k), mode="same").numpy(),
          np.asarray(xcorr.corr2d(jnp.asarray(x), jnp.asarray(k), mode="same"))):
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)
g = rng.standard_normal(want.shape)
gx, gk = xcorr.corr2d_vjp(x, k, g, mode="same")
jgx, jgk = jax.grad(lambda x, k: jnp.sum(xcorr.corr2d(x, k, mode="same") * g), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(k))
np.testing.assert_allclose(np.asarray(jgk), gk, rtol=1e-10)
np.testing.assert_allclose(np.asarray(jgx), gx, rtol=1e-10, atol=1e-12)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code, str(package)], cwd=tmp_path, env={**__import__("os").environ,
                          "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
