"""The shape of the code: what imports what (read with ``ast``, nothing imported)."""

from __future__ import annotations

import ast
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import xcorr

from matrix import require_module

XCORR = pathlib.Path(xcorr.__file__).parent
BACKENDS = XCORR.parent / "backends"


def _imports(path: pathlib.Path):
    """``(line, module)`` of every import in ``path``, with relative imports as written (``..toolkit``)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.module is None:
                for alias in node.names:
                    yield node.lineno, base + alias.name
            else:
                yield node.lineno, base


def test_backends_import_xcorr_only_through_the_toolkit():
    # An adapter reaches the core through xcorr.toolkit (the documented API for
    # adapter authors) and its own sibling modules, never a private module.
    # A package's modules (backends/jax/) reach the core one level further up.
    offenders = []
    for path in sorted(BACKENDS.rglob("*.py")):
        core = "." * (len(path.relative_to(BACKENDS).parts) + 1)  # xcorr, relative to this module
        for line, module in _imports(path):
            inside = module.startswith(core) or module.split(".")[0] == "xcorr"
            if inside and module not in (core + "toolkit", "xcorr.toolkit"):
                offenders.append(f"{path.relative_to(BACKENDS)}:{line}: {module}")
    assert not offenders, "backends/ reaching past xcorr.toolkit:\n" + "\n".join(offenders)


# ---------------------------------------------------------------------------
# The module graph of xcorr: no circle, no function-local import of xcorr
# ---------------------------------------------------------------------------


def _modules() -> dict[str, pathlib.Path]:
    """``xcorr.<name>`` (and ``xcorr.backends.<name>``, installed from backends/) to its file."""
    found = {}
    for package, root in (("xcorr", XCORR), ("xcorr.backends", BACKENDS)):
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


def _type_checking_blocks(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            ids |= {id(n) for n in ast.walk(node)}
    return ids


def _edges(name: str, path: pathlib.Path, modules, *, type_checking=False):
    """``(target, line, local)`` for each import of an xcorr module by module ``name``; ``local``:
    inside a function or class body. Imports under ``if TYPE_CHECKING:`` count only with
    ``type_checking``."""
    tree = ast.parse(path.read_text())
    skip = set() if type_checking else _type_checking_blocks(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in ast.walk(f)}  # fmt: skip
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in modules]
            targets = targets or [module]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target, node.lineno, id(node) in local


def _graph(*, type_checking=False):
    modules = _modules()
    return {name: list(_edges(name, path, modules, type_checking=type_checking)) for name, path in modules.items()}


# xcorr.keras loads the Keras adapter (and Keras) on first use: an optional dependency. (The
# adapters in backends/ load their optional numba modules where first needed.)
OPTIONAL_DEPENDENCIES = {("xcorr.keras", "xcorr.backends.keras")}


def test_array_functions_are_every_public_correlation_convolution_vjp_and_jvp():
    """``toolkit.ARRAY_FUNCTIONS`` is what torch's compiler takes whole into its graphs: a public
    function missing from it would be traced through the core's Python (and break the graph)."""
    from xcorr.toolkit import ARRAY_FUNCTIONS

    public = {name for name in xcorr.__all__ if name.startswith(("corr", "conv"))}
    assert sorted(f.__name__ for f in ARRAY_FUNCTIONS) == sorted(public)
    assert all(getattr(xcorr, f.__name__) is f for f in ARRAY_FUNCTIONS)


def test_option_keywords_follow_one_declaration():
    """Every public function spells its option keywords out (what an IDE, ``help()`` and a type
    checker read), and each spelling is a copy of one declaration: the names and order of
    ``xcorr._call.OPTIONS``, keyword-only, with ``Options.parse``'s defaults. A default that drifted
    in one of the ~30 signatures would silently change that function's behaviour."""
    import inspect

    from xcorr._call import OPTIONS
    from xcorr._options import Options

    declared = {name: p.default for name, p in inspect.signature(Options.parse).parameters.items()}
    checked = []
    for name in xcorr.__all__:
        function = getattr(xcorr, name)
        if not inspect.isfunction(function) or "mode" not in inspect.signature(function).parameters:
            continue
        parameters = inspect.signature(function).parameters
        options = [p for p in parameters.values() if p.name in OPTIONS]
        assert [p.name for p in options] == list(OPTIONS), f"{name}: option keywords {[p.name for p in options]}"
        for p in options:
            assert p.kind is inspect.Parameter.KEYWORD_ONLY, f"{name}({p.name}=...) is not keyword-only"
            assert p.default == declared[p.name], f"{name}({p.name}={p.default!r}): declared {declared[p.name]!r}"
        checked.append(name)
    assert len(checked) >= 27, checked  # corr/conv in 1, 2 and 3 axes, multi-channel, VJPs and JVPs


def test_no_function_local_import_of_xcorr():
    local = [
        f"{name} -> {target} (line {line})"
        for name, edges in _graph().items()
        for target, line, inside in edges
        if inside and name.split(".")[1] != "backends" and (name, target) not in OPTIONAL_DEPENDENCIES
    ]
    assert not local, "function-local imports of xcorr modules:\n" + "\n".join(local)


def test_module_graph_has_no_cycle():
    # Imports for type checkers count too: a circle that only annotations close is still a circle
    # in what a reader must hold in mind (and in what mypy resolves).
    graph = {name: sorted({target for target, _, _ in edges}) for name, edges in _graph(type_checking=True).items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node, path):
        state[node] = 1
        for target in graph.get(node, ()):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# ---------------------------------------------------------------------------
# The layers, as import-linter contracts ([tool.importlinter] in pyproject.toml)
# ---------------------------------------------------------------------------


def test_import_linter_contracts_are_kept(tmp_path):
    # lint-imports reads the installed layout, where backends/ is xcorr/backends/
    # (pyproject's package-dir): build that layout and check it there.
    require_module("importlinter")  # the test extra installs it
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which("lint-imports")
    assert lint is not None, "import-linter installs the lint-imports command"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(XCORR, tmp_path / "xcorr", ignore=ignore)
    shutil.copytree(BACKENDS, tmp_path / "xcorr" / "backends", ignore=ignore)
    config = XCORR.parent / "pyproject.toml"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([lint, "--no-cache", str(config)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


# ---------------------------------------------------------------------------
# Validate once: each operand of a public call passes its checks once
# ---------------------------------------------------------------------------


def _checks_per_operand(monkeypatch, call, *operands):
    """How many times each of ``operands`` went through ``_options.check_array`` in ``call()``,
    on a signature not seen before (a prepared signature checks nothing again)."""
    from xcorr import _options, _prepared

    _prepared.clear_prepared()
    seen: list[int] = []
    check = _options.check_array
    monkeypatch.setattr(_options, "check_array", lambda name, a: (seen.append(id(a)), check(name, a))[1])
    call()
    return [seen.count(id(a)) for a in operands]


def _calls():
    """``(name, call, operands)``: public calls on fresh numpy operands."""
    import numpy as np

    x, k, g = np.ones((2, 7, 9)), np.ones((3, 2)), np.ones((2, 5, 8))
    xm, w, b, gm = np.ones((2, 4, 7, 9)), np.ones((6, 2, 3, 3)), np.ones(6), np.ones((2, 6, 5, 7))
    xl = np.ones((2, 7, 9, 4))
    xt, wt = np.ones((2, 4, 5, 6)), np.ones((4, 3, 3, 3))
    gt, gs = np.ones((2, 6, 11, 13)), np.ones((2, 15, 18))
    return [
        ("corr2d", lambda: xcorr.corr2d(x, k, mode="same", boundary="symm", stride=2), (x, k)),
        ("conv2d", lambda: xcorr.conv2d(x, k, padding="SAME", dilation=2), (x, k)),
        ("corr2d_vjp", lambda: xcorr.corr2d_vjp(x, k, g), (x, k, g)),
        ("corr2d_jvp", lambda: xcorr.corr2d_jvp(x, k, x + 1, k + 1), (x, k)),
        (
            "corr2d_multi channels-last with bias",
            lambda: xcorr.corr2d_multi(xl, w, bias=b, groups=2, padding=1, data_format="channels_last"),
            (xl, w, b),
        ),
        ("corr2d_multi_vjp", lambda: xcorr.corr2d_multi_vjp(xm, w, gm, groups=2), (xm, w, gm)),
        ("corr2d_multi_jvp", lambda: xcorr.corr2d_multi_jvp(xm, w, xm + 1, w + 1, groups=2), (xm, w)),
        ("conv_transpose2d with bias", lambda: xcorr.conv_transpose2d(xt, wt, bias=b, groups=2, stride=2), (xt, wt, b)),
        ("conv_transpose2d_vjp", lambda: xcorr.conv_transpose2d_vjp(xt, wt, gt, groups=2, stride=2), (xt, wt, gt)),
        ("corr2d_transpose", lambda: xcorr.corr2d_transpose(x, k, stride=2), (x, k)),
        ("corr2d_transpose_vjp", lambda: xcorr.corr2d_transpose_vjp(x, k, gs, stride=2), (x, k, gs)),
    ]


@pytest.mark.parametrize("index", range(len(_calls())), ids=[name for name, _, _ in _calls()])
def test_a_public_call_checks_each_array_once(monkeypatch, index):
    name, call, operands = _calls()[index]
    assert _checks_per_operand(monkeypatch, call, *operands) == [1] * len(operands), name


def _repeated_calls():
    """``(name, call)``: public calls whose second call, on new arrays of the first call's signature,
    is the prepared one."""
    import numpy as np

    def fresh(*shape):
        return np.random.default_rng(len(shape)).standard_normal(shape)

    return [
        ("corr2d", lambda: xcorr.corr2d(fresh(2, 7, 9), fresh(3, 2), mode="same", boundary="symm")),
        ("corr2d_multi", lambda: xcorr.corr2d_multi(fresh(2, 4, 7, 9), fresh(6, 2, 3, 3), bias=fresh(6), groups=2)),
        ("corr1d", lambda: xcorr.corr1d(fresh(2, 9), fresh(3), stride=2)),
        ("corr1d_multi", lambda: xcorr.corr1d_multi(fresh(2, 4, 9), fresh(6, 2, 3), bias=fresh(6), groups=2)),
        (
            "corr1d_multi channels-last",
            lambda: xcorr.corr1d_multi(fresh(2, 9, 4), fresh(6, 4, 3), padding=1, data_format="channels_last"),
        ),
        ("corr3d", lambda: xcorr.corr3d(fresh(2, 5, 6, 7), fresh(2, 2, 2), mode="full")),
        ("corr3d_multi", lambda: xcorr.corr3d_multi(fresh(1, 4, 5, 6, 7), fresh(6, 2, 2, 3, 3), bias=fresh(6), groups=2)),
    ]


@pytest.mark.parametrize("index", range(len(_repeated_calls())), ids=[name for name, _ in _repeated_calls()])
def test_a_repeated_signature_checks_no_array_again(monkeypatch, index):
    from xcorr import _options, _prepared

    name, call = _repeated_calls()[index]
    _prepared.clear_prepared()
    call()
    seen: list[str] = []
    check = _options.check_array
    monkeypatch.setattr(_options, "check_array", lambda what, a: (seen.append(what), check(what, a))[1])
    call()
    assert seen == [], f"{name}: the repeated call checked {seen} again"
