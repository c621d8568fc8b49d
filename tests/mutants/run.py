"""Runner of the planted-bug check (``python -m tests.mutants --help``).

For each mutant: a fresh copy of the package in a temporary directory, laid
out as installed (``xcorr/`` with ``backends/`` as ``xcorr/backends/``),
next to a copy of ``tests/``, ``pyproject.toml`` and ``README.md``; the
mutant's one source edit applied there; then ``python -m pytest -x -q`` on
the mutant's tests, run with that directory as the working directory and
first on ``PYTHONPATH``, so ``import xcorr`` loads the copy (checked once
before the mutants run). pytest failing (exit status 1) kills the mutant;
passing means it survived. The tests that killed mutants are then run once
more on an unmutated copy: a kill only counts if that test passes without
the mutant.

Every mutant's snippet must occur exactly once in its file: a snippet that
is missing or ambiguous (the code moved on) is reported as stale and the
run fails before any test runs.

Environment of the test runs: ``CI=true`` (as in CI: missing optional
dependencies fail rather than skip, hypothesis is derandomised),
``PYTHONDONTWRITEBYTECODE=1``, and one numba cache directory shared by the
workers, seeded with the kernels the test run already compiled for these
sources (``seed_numba_cache``); a mutant of a numba source file gets an
empty cache of its own, so that nothing compiled from another source is
reused.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .catalogue import MUTANTS, NUMBA_SOURCES, Mutant

ROOT = Path(__file__).resolve().parents[2]
PYTEST = ["-q", "-p", "no:cacheprovider", "--no-header"]
# Node ids of failed tests in pytest's short summary (``-ra``, set in pyproject.toml).
# "FAILED <node id> - <message>": node ids may hold spaces (parameters like "(61, 57)").
FAILED = re.compile(r"^(FAILED|ERROR) (.+?)(?: - .*)?$")


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, SURVIVED, timeout, error
    killer: str = ""
    seconds: float = 0.0
    detail: str = ""


def stale(mutants: list[Mutant]) -> list[str]:
    """One line for each mutant whose snippet does not occur exactly once in its file."""
    problems = []
    for m in mutants:
        path = ROOT / m.file
        if not path.is_file():
            problems.append(f"{m.name}: {m.file} does not exist")
            continue
        count = path.read_text(encoding="utf-8").count(m.old)
        if count != 1:
            problems.append(f"{m.name}: the snippet occurs {count} times in {m.file} (expected once): {m.old!r}")
        if m.old == m.new:
            problems.append(f"{m.name}: the replacement equals the snippet")
        for entry in m.tests:
            file, _, function = entry.lstrip("?").partition("::")
            if not (ROOT / file).is_file():
                if not entry.startswith("?"):
                    problems.append(f"{m.name}: its test file {file} does not exist")
            elif function and f"def {function}(" not in (ROOT / file).read_text(encoding="utf-8"):
                problems.append(f"{m.name}: its test {entry.lstrip('?')} does not exist")
        if not [a for a in selection(m)[0] if a.startswith("tests")]:
            problems.append(f"{m.name}: none of its tests exist")
    return problems


def copy_tree(dest: Path) -> None:
    """The package as installed (xcorr/ with xcorr/backends/), the tests and the files they read."""
    if dest.exists():
        shutil.rmtree(dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", ".hypothesis", ".pytest_cache")
    shutil.copytree(ROOT / "xcorr", dest / "xcorr", ignore=ignore)
    shutil.copytree(ROOT / "backends", dest / "xcorr" / "backends", ignore=ignore)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=shutil.ignore_patterns("mutants", "__pycache__", ".hypothesis"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)


def target(tree: Path, file: str) -> Path:
    """Where a repository file lives in the copied tree."""
    first, rest = file.split("/", 1)
    return tree / "xcorr" / "backends" / rest if first == "backends" else tree / file


def apply(tree: Path, mutant: Mutant) -> None:
    path = target(tree, mutant.file)
    text = path.read_text(encoding="utf-8")
    if text.count(mutant.old) != 1:  # checked up front; the copy must agree
        raise RuntimeError(f"{mutant.name}: snippet not found exactly once in the copy {path}")
    path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")


def seed_numba_cache(cache: Path) -> list[str]:
    """Copy the kernels already compiled for the unmutated sources into ``cache``; their names.

    ``xcorr.backends._numba_cache`` keeps a source set's kernels in a
    directory named after the hash of those sources and numba's version
    (``xcorr-<hash>``), wherever the package lies. A copy of the tree with
    the numba sources unchanged has the same hash, so it loads what the test
    run compiled (``NUMBA_CACHE_DIR``, else the package's ``__pycache__``)
    instead of compiling every kernel again in each worker. Directories of
    other hashes are copied too and never read.
    """
    cache.mkdir(parents=True, exist_ok=True)
    sources = [Path(os.environ["NUMBA_CACHE_DIR"])] if os.environ.get("NUMBA_CACHE_DIR") else []
    sources.append(ROOT / "backends" / "__pycache__")
    seeded = []
    for source in sources:
        for directory in sorted(source.glob("xcorr-*")):
            if directory.is_dir() and not (cache / directory.name).exists():
                shutil.copytree(directory, cache / directory.name)
                seeded.append(directory.name)
    return seeded


def environment(tree: Path, numba_cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CI="true",
        PYTHONPATH=str(tree),
        PYTHONDONTWRITEBYTECODE="1",
        NUMBA_CACHE_DIR=str(numba_cache),
        XCORR_CI_MODULES_CHECKED="1",  # by check_imports, once for all the runs
    )
    env.pop("PYTEST_ADDOPTS", None)
    return env


LIVE: set[subprocess.Popen] = set()  # running pytest processes, ended if the runner is stopped
LIVE_LOCK = threading.Lock()


def pytest(tree: Path, args: list[str], numba_cache: Path, timeout: float, *, first=True) -> tuple[int | None, str]:
    """pytest's exit status (None after ``timeout`` seconds) and output; ``first``: stop at the first failure."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *PYTEST, *(["-x"] if first else []), *args],
        cwd=tree,
        env=environment(tree, numba_cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends whatever the tests started too
    )
    with LIVE_LOCK:
        LIVE.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _end(proc)
        out, _ = proc.communicate()
        return None, out
    finally:
        with LIVE_LOCK:
            LIVE.discard(proc)
    return proc.returncode, out


def _end(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def selection(mutant: Mutant) -> tuple[list[str], list[str]]:
    """The mutant's pytest arguments, and its optional entries ("?path...") whose file is absent."""
    args, absent = (["-k", mutant.k] if mutant.k else []), []
    for entry in mutant.tests:
        optional = entry.startswith("?")
        entry = entry.removeprefix("?")
        if optional and not (ROOT / entry.split("::", 1)[0]).is_file():
            absent.append(entry)
        else:
            args.append(entry)
    return args, absent


def check_imports(tree: Path, numba_cache: Path) -> None:
    """``import xcorr`` in the test runs must load the copy, not the working tree or an installed one;
    and every optional dependency of the CPU matrix must import (``tests/conftest.py`` then leaves
    that check out of each of the runs: ``XCORR_CI_MODULES_CHECKED``)."""
    code = (
        "import importlib, sys, xcorr, xcorr.backends as b\n"
        "sys.path.insert(0, 'tests')\n"
        "from matrix import CI_MODULES\n"
        "for name in CI_MODULES: importlib.import_module(name)\n"
        "print(xcorr.__file__); print(b.__file__)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=tree, env=environment(tree, numba_cache), capture_output=True, text=True
    )
    files = proc.stdout.split()
    if proc.returncode != 0 or len(files) != 2 or not all(Path(f).resolve().is_relative_to(tree.resolve()) for f in files):
        raise SystemExit(
            f"the copy at {tree} is not what the tests import, or a module of the CPU matrix is missing:\n"
            f"{proc.stdout}{proc.stderr}"
        )


def run_mutant(mutant: Mutant, tree: Path, cache: Path, scratch: Path, args: list[str], timeout: float) -> Outcome:
    copy_tree(tree)
    apply(tree, mutant)
    own_cache = mutant.file in NUMBA_SOURCES
    numba_cache = Path(tempfile.mkdtemp(prefix="numba-", dir=scratch)) if own_cache else cache
    start = time.perf_counter()
    try:
        rc, out = pytest(tree, args, numba_cache, timeout)
    finally:
        if own_cache:
            shutil.rmtree(numba_cache, ignore_errors=True)
    seconds = time.perf_counter() - start
    if rc is None:
        return Outcome(mutant, "timeout", seconds=seconds, detail=out[-2000:])
    if rc == 0:
        return Outcome(mutant, "SURVIVED", seconds=seconds)
    if rc == 1:
        killers = [m.group(2) for line in out.splitlines() if (m := FAILED.match(line))]
        return Outcome(mutant, "killed", killer=killers[0] if killers else "?", seconds=seconds, detail=out[-2000:])
    return Outcome(mutant, "error", seconds=seconds, detail=f"pytest exit status {rc}\n{out[-3000:]}")


def confirm_killers(outcomes: list[Outcome], tree: Path, cache: Path, timeout: float) -> None:
    """Run every killing test on the unmutated copy; a kill by a test that fails anyway is an error."""
    killers = sorted({o.killer for o in outcomes if o.status == "killed" and o.killer != "?"})
    for o in outcomes:
        if o.status == "killed" and o.killer == "?":
            o.status, o.detail = "error", "pytest failed but named no failed test:\n" + o.detail
    if not killers:
        return
    copy_tree(tree)
    rc, out = pytest(tree, killers, cache, timeout, first=False)
    if rc == 0:
        return
    broken = {m.group(2) for line in out.splitlines() if (m := FAILED.match(line))}
    for o in outcomes:
        if o.status == "killed" and (o.killer in broken or rc != 1):
            o.status, o.detail = "error", f"{o.killer} also fails without the mutant:\n{out[-3000:]}"


def report(outcomes: list[Outcome], total: float) -> None:
    name_w = max(len(o.mutant.name) for o in outcomes)
    file_w = max(len(o.mutant.file) for o in outcomes)
    print(f"\n{'mutant':<{name_w}}  {'file':<{file_w}}  {'result':<8}  {'s':>5}  killed by")
    for o in outcomes:
        print(f"{o.mutant.name:<{name_w}}  {o.mutant.file:<{file_w}}  {o.status:<8}  {o.seconds:5.0f}  {o.killer}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("killed", "SURVIVED", "timeout", "error")}
    print(
        f"\n{counts['killed']} killed, {counts['SURVIVED']} survived, {counts['timeout']} timed out, "
        f"{counts['error']} errors, of {len(outcomes)} mutants in {total:.0f} s"
    )
    for o in outcomes:
        if o.status == "SURVIVED":
            print(f"\nSURVIVED {o.mutant.name} ({o.mutant.file}): {o.mutant.bug}\n  tests run: {' '.join(selection(o.mutant)[0])}")
        elif o.status in ("timeout", "error"):
            print(f"\n{o.status.upper()} {o.mutant.name} ({o.mutant.file}):\n{o.detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="mutants run at once")
    parser.add_argument("--only", help="comma-separated mutant names")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument(
        "--all-tests", action="store_true", help="run the whole suite on each mutant instead of its selected tests"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant (a hang counts as a timeout)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    mutants = list(MUTANTS)
    names = [m.name for m in mutants]
    if len(set(names)) != len(names):
        raise SystemExit("mutant names must be unique")
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"--only: unknown mutants {', '.join(unknown)}")
        mutants = [m for m in mutants if m.name in wanted]
    if args.list:
        for m in mutants:
            print(f"{m.name} ({m.file}): {m.bug}\n  pytest {' '.join(selection(m)[0])}")
        return 0
    absent = sorted({entry for m in mutants for entry in selection(m)[1]})
    if absent:
        print("Optional test entries not in this tree (not run):", *absent, sep="\n  ", flush=True)
    problems = stale(mutants)
    if problems:
        print("Stale mutants (the code changed; update tests/mutants/catalogue.py):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    # A stopped run (SIGTERM, as from CI's timeout) still ends its pytest processes and removes its copies.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Path(tempfile.mkdtemp(prefix="xcorr-mutants-"))
    start = time.perf_counter()
    try:
        jobs = max(1, min(args.jobs, len(mutants)))
        trees = [scratch / f"tree{i}" for i in range(jobs)]
        cache = scratch / "numba"
        seeded = seed_numba_cache(cache)
        print(f"numba cache seeded with {', '.join(seeded) or 'nothing'}", flush=True)
        copy_tree(trees[0])
        check_imports(trees[0], cache)
        todo: queue.Queue[Mutant] = queue.Queue()
        for m in mutants:
            todo.put(m)
        outcomes: dict[str, Outcome] = {}
        lock = threading.Lock()

        def worker(i: int) -> None:
            while True:
                try:
                    m = todo.get_nowait()
                except queue.Empty:
                    return
                tests = ["tests"] if args.all_tests else selection(m)[0]
                try:
                    o = run_mutant(m, trees[i], cache, scratch, tests, args.timeout)
                except Exception as err:  # noqa: BLE001 - reported in the table
                    o = Outcome(m, "error", detail=repr(err))
                with lock:
                    outcomes[m.name] = o
                    print(f"{o.status:<8} {m.name} ({o.seconds:.0f} s) {o.killer}", flush=True)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ordered = [outcomes[m.name] for m in mutants]
        confirm_killers(ordered, trees[0], cache, args.timeout)
        report(ordered, time.perf_counter() - start)
    finally:
        with LIVE_LOCK:
            for proc in LIVE:
                _end(proc)
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0 if all(o.status == "killed" for o in ordered) else 1
