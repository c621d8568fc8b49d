"""``python -m xcorr correlate``: 1-D, 2-D and 3-D arrays from .npy and .csv against scipy and numpy loops,
options passed through, output formats, one-line errors, and a second backend giving the same numbers."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from xcorr._cli import main

from matrix import require_module

RNG = np.random.default_rng(23)


def correlate(*args) -> int:
    return main(["correlate", *map(str, args)])


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("python -m xcorr correlate: error: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


def loop_corr1d(x: np.ndarray, k: np.ndarray, stride: int = 1, dilation: int = 1) -> np.ndarray:
    """'valid' correlation of the last axis, written out: y[..., i] = sum_j x[..., i*stride + j*dilation] k[j]."""
    span = (k.size - 1) * dilation + 1
    n = (x.shape[-1] - span) // stride + 1
    y = np.zeros((*x.shape[:-1], n))
    for i in range(n):
        for j in range(k.size):
            y[..., i] += x[..., i * stride + j * dilation] * k[j]
    return y


def test_1d_signal_from_csv_with_an_inline_kernel(tmp_path, capsys):
    x = RNG.standard_normal(20)
    (tmp_path / "signal.csv").write_text("".join(f"{v:.17g}\n" for v in x))
    out = tmp_path / "y.npy"
    assert correlate(tmp_path / "signal.csv", "--kernel", "1,-2,0.5", "-o", out) == 0
    y = np.load(out)
    np.testing.assert_allclose(y, signal.correlate(x, [1, -2, 0.5], mode="valid"), rtol=1e-12, atol=1e-12)
    printed = capsys.readouterr()
    assert printed.out.startswith(f"wrote {out} (shape (18,), float64) in ")
    assert "read " in printed.err and "corr1d with the kernel [1,-2,0.5] (valid mode) on numpy" in printed.err


def test_1d_npy_batch_with_stride_dilation_and_a_csv_kernel_row(tmp_path):
    x = RNG.standard_normal((3, 30))
    k = RNG.standard_normal(4)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "k.csv").write_text(",".join(f"{v:.17g}" for v in k) + "\n")  # one row: a 1-D kernel
    out = tmp_path / "y.npy"
    assert correlate(tmp_path / "x.npy", "-k", tmp_path / "k.csv", "--stride", 2, "--dilation", 3, "-o", out, "-q") == 0
    np.testing.assert_allclose(np.load(out), loop_corr1d(x, k, stride=2, dilation=3), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["valid", "same", "full"])
def test_2d_npy_against_scipy_in_every_mode_and_convolve(tmp_path, mode):
    x = RNG.standard_normal((9, 11))
    k = RNG.standard_normal((3, 5))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "k.npy", k)
    for flag, oracle in ((), signal.correlate2d), (("--convolve",), signal.convolve2d):
        out = tmp_path / "y.npy"
        assert correlate(tmp_path / "x.npy", "-k", tmp_path / "k.npy", "--mode", mode, *flag, "-o", out, "-q") == 0
        np.testing.assert_allclose(np.load(out), oracle(x, k, mode=mode), rtol=1e-12, atol=1e-12)


def test_2d_boundary_and_fillvalue_pass_through(tmp_path):
    x = RNG.standard_normal((6, 7))
    k = RNG.standard_normal((3, 3))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "k.npy", k)
    out = tmp_path / "y.npy"
    for boundary, extra, oracle in [
        ("wrap", (), signal.correlate2d(x, k, mode="same", boundary="wrap")),
        ("symm", (), signal.correlate2d(x, k, mode="same", boundary="symm")),
        ("fill", ("--fillvalue", "-1.5"), signal.correlate2d(x, k, mode="same", fillvalue=-1.5)),
    ]:
        args = (tmp_path / "x.npy", "-k", tmp_path / "k.npy", "--mode", "same", "--boundary", boundary, *extra)
        assert correlate(*args, "-o", out, "-q") == 0
        np.testing.assert_allclose(np.load(out), oracle, rtol=1e-12, atol=1e-12)


def test_3d_npy_with_a_batch_axis_and_per_axis_stride(tmp_path):
    x = RNG.standard_normal((2, 6, 7, 8))
    k = RNG.standard_normal((2, 3, 2))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "k.npy", k)
    out = tmp_path / "y.npy"
    assert correlate(tmp_path / "x.npy", "-k", tmp_path / "k.npy", "--stride", "2,1,3", "-o", out, "-q") == 0
    y = np.load(out)
    expected = np.stack([signal.correlate(v, k, mode="valid")[::2, :, ::3] for v in x])
    assert y.shape == expected.shape == (2, 3, 5, 3)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # convolution flips every axis
    assert correlate(tmp_path / "x.npy", "-k", tmp_path / "k.npy", "--convolve", "-o", out, "-q") == 0
    np.testing.assert_allclose(np.load(out), np.stack([signal.convolve(v, k, mode="valid") for v in x]), atol=1e-12)


def test_integer_npy_stays_exact(tmp_path):
    x = np.arange(12, dtype=np.int64).reshape(3, 4) ** 3
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.csv"
    assert correlate(tmp_path / "x.npy", "-k", "1,-1", "-o", out, "-q") == 0
    assert out.read_text().splitlines()[0] == "-1,-7,-19"
    np.testing.assert_array_equal(np.loadtxt(out, delimiter=",", dtype=np.int64), x[:, :-1] - x[:, 1:])


def test_an_inline_kernel_takes_the_input_dtype(tmp_path):
    out = tmp_path / "y.npy"
    x = RNG.standard_normal((4, 9)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert correlate(tmp_path / "x.npy", "-k", "0.25,0.5,0.25", "-o", out, "-q") == 0
    y = np.load(out)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, 0.25 * x[:, :-2] + 0.5 * x[:, 1:-1] + 0.25 * x[:, 2:], rtol=1e-6, atol=1e-6)
    np.save(tmp_path / "i.npy", np.array([1, 5, 2, 9], dtype=np.int32))
    assert correlate(tmp_path / "i.npy", "-k", "2,-1", "-o", out, "-q") == 0
    assert np.load(out).tolist() == [-3, 8, -5] and np.load(out).dtype.kind == "i"
    assert correlate(tmp_path / "i.npy", "-k", "0.5,0.5", "-o", out, "-q") == 0
    assert np.load(out).tolist() == [3.0, 3.5, 5.5]


def test_csv_output_reads_back_to_the_same_numbers_and_stdout(tmp_path, capsys, monkeypatch):
    x = RNG.standard_normal((5, 6))
    (tmp_path / "x.csv").write_text("\n".join(",".join(f"{v:.17g}" for v in row) for row in x) + "\n")  # a 2-D table
    out = tmp_path / "y.csv"
    assert correlate(tmp_path / "x.csv", "-k", "0.1,0.7,0.2", "-o", out, "-q") == 0
    y = np.loadtxt(out, delimiter=",")
    expected = np.stack([signal.correlate(row, [0.1, 0.7, 0.2], mode="valid") for row in x])
    assert y.shape == (5, 4)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)
    capsys.readouterr()
    # "-o -": CSV on stdout and nothing else there; the input from stdin
    monkeypatch.setattr(sys, "stdin", io.StringIO("1\n2\n4\n8\n"))
    assert correlate("-", "-k", "1,-1", "-o", "-") == 0
    printed = capsys.readouterr()
    assert printed.out == "-1\n-2\n-4\n"
    assert "read stdin: shape (4,), float64" in printed.err


def test_torch_gives_the_same_numbers(tmp_path, capsys):
    require_module("torch")
    x = RNG.standard_normal((2, 7, 8)).astype(np.float32)
    k = RNG.standard_normal((3, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "k.npy", k)
    results = {}
    for name in ("numpy", "torch"):
        out = tmp_path / f"{name}.npy"
        args = (
            tmp_path / "x.npy",
            "-k",
            tmp_path / "k.npy",
            "--mode",
            "same",
            "--boundary",
            "reflect",
            "--backend",
            name,
        )
        assert correlate(*args, "-o", out) == 0
        results[name] = np.load(out)
    assert "on torch ..." in capsys.readouterr().err
    assert results["torch"].dtype == results["numpy"].dtype == np.float32
    np.testing.assert_allclose(results["torch"], results["numpy"], rtol=1e-5, atol=1e-5)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    np.testing.assert_allclose(results["torch"], [signal.correlate2d(p, k, mode="valid") for p in padded], atol=1e-5)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["{tmp}/missing.npy", "-k", "1,-1", "-o", "{out}"], r"INPUT '.*missing.npy' does not exist"),
        (["{tmp}/missing.csv", "-k", "1,-1", "-o", "{out}"], r"INPUT '.*missing.csv' does not exist"),
        (["{x1}", "-k", "{tmp}/none.npy", "-o", "{out}"], r"--kernel '.*none.npy' does not exist"),
        (
            ["{x1}", "-k", "{cube}", "-o", "{out}"],
            r"the kernel cube.npy \(2, 2, 2\) is 3-D but INPUT '.*x1.npy' is 1-D \(shape \(10,\)\): the kernel may not have more axes than the input",
        ),
        (
            ["{x1}", "-k", "{k4}", "-o", "{out}"],
            r"--kernel '.*k4.npy' must be a 1-D, 2-D or 3-D kernel; got shape \(1, 1, 1, 1\)",
        ),
        (["{badcsv}", "-k", "1,-1", "-o", "{out}"], r"INPUT '.*bad.csv' is not a CSV table of numbers"),
        (["{ragged}", "-k", "1,-1", "-o", "{out}"], r"INPUT '.*ragged.csv' is not a CSV table of numbers"),
        (["{empty}", "-k", "1,-1", "-o", "{out}"], r"INPUT '.*empty.csv' is empty: it holds no numbers"),
        (
            ["{tmp}/x.txt", "-k", "1,-1", "-o", "{out}"],
            r"INPUT '.*x.txt' must be a .npy or .csv file; got the suffix '.txt'",
        ),
        (
            ["{complex}", "-k", "1,-1", "-o", "{out}"],
            r"INPUT '.*complex.npy' must hold real numbers \(integer or float\); got dtype complex128",
        ),
        (["{objects}", "-k", "1,-1", "-o", "{out}"], r"INPUT '.*objects.npy' is not a .npy array: .*allow_pickle"),
        (
            ["{x1}", "-k", "one,two", "-o", "{out}"],
            r"--kernel 'one,two' is neither a .npy or .csv file nor comma-separated numbers",
        ),
        (["{x1}", "-k", "1,nan", "-o", "{out}"], r"--kernel '1,nan' has NaN or infinite values"),
        (["{x1}", "-k", "1,-1", "-o", "{tmp}/y.mat"], r"-o/--output must name a .npy/.csv file; got '.*y.mat'"),
        (["{x1}", "-k", "1,-1", "-o", "{tmp}/no/such/y.npy"], r"-o/--output: the folder '.*such' does not exist"),
        (
            ["{x3}", "-k", "1,-1", "-o", "{tmp}/y.csv"],
            r"-o/--output: CSV holds 1-D or 2-D arrays; the result is 3-D: write a .npy file",
        ),
        (
            ["{x1}", "-k", "1,2,3,4,5,6,7,8,9,10,11", "-o", "{out}", "-q"],
            r"corr1d of INPUT '.*x1.npy' \(10,\) with the kernel \[1,.*\]: k is larger than x in \"valid\" mode",
        ),
        (
            ["{x1}", "-k", "1,-1", "--stride", "1,2", "-o", "{out}", "-q"],
            r"corr1d of .*: stride must be an int >= 1 or a sequence of 1 int",
        ),
        (["{x1}", "-k", "1,-1", "-o", "{out}", "--backend", "tensorflow"], r"unknown backend 'tensorflow'"),
    ],
)
def test_errors_are_one_line_naming_the_argument(tmp_path, capsys, args, match):
    np.save(tmp_path / "x1.npy", np.arange(10.0))
    np.save(tmp_path / "x3.npy", np.ones((2, 3, 4)))
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    np.save(tmp_path / "k4.npy", np.ones((1, 1, 1, 1)))
    np.save(tmp_path / "complex.npy", np.ones(4, dtype=complex))
    np.save(tmp_path / "objects.npy", np.array([1, None], dtype=object), allow_pickle=True)
    (tmp_path / "bad.csv").write_text("1\ntwo\n3\n")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "x.txt").write_text("1\n2\n")
    names = {p.stem: p for p in tmp_path.iterdir()}
    names |= {"badcsv": tmp_path / "bad.csv", "tmp": tmp_path, "out": tmp_path / "y.npy"}
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["correlate", *(a.format(**names) for a in args)]) == 2
    err = one_line_error(capsys)
    assert re.search(match, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temporary file


@pytest.mark.parametrize(
    "args",
    [
        ["correlate", "x.npy", "-o", "y.npy"],  # no kernel
        ["correlate", "x.npy", "-k", "1,-1"],  # no output
        ["correlate", "x.npy", "-k", "1,-1", "-o", "y.npy", "--mode", "centre"],
        ["correlate", "x.npy", "-k", "1,-1", "-o", "y.npy", "--boundary", "periodic"],
        ["correlate", "x.npy", "-k", "1,-1", "-o", "y.npy", "--stride", "0"],
        ["correlate", "x.npy", "-k", "1,-1", "-o", "y.npy", "--dilation", "1,x"],
        ["correlate", "x.npy", "-k", "1,-1", "-o", "y.npy", "--fillvalue", "nan"],
    ],
)
def test_argument_errors_exit_with_usage(args, capsys):
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    assert "usage: python -m xcorr correlate" in capsys.readouterr().err


def test_help_names_the_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "    correlate " in capsys.readouterr().out


def test_docs_usage_line_matches_the_parser():
    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "cli.md").read_text()
    assert "xcorr correlate INPUT -k KERNEL -o OUT [--convolve] [--mode {valid,same,full}]" in text


def test_docs_example_prints_what_it_shows(tmp_path, capsys, monkeypatch):
    text = (Path(__file__).resolve().parents[1] / "docs" / "guide" / "cli.md").read_text()
    shown = "$ printf '1\\n2\\n4\\n8\\n' > signal.csv\n$ xcorr correlate signal.csv -k 1,-1 -o - -q\n-1\n-2\n-4\n"
    assert shown in text
    monkeypatch.chdir(tmp_path)
    Path("signal.csv").write_text("1\n2\n4\n8\n")
    assert main(["correlate", "signal.csv", "-k", "1,-1", "-o", "-", "-q"]) == 0
    assert capsys.readouterr() == ("-1\n-2\n-4\n", "")
