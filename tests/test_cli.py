"""``python -m xcorr``: help, the seed demo on every backend, its plot, and edge detection on image files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xcorr._cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "xcorr", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def test_help_lists_the_commands():
    out = run_module("--help")
    assert out.returncode == 0, out.stderr
    assert "python -m xcorr demo" in out.stdout
    for command in ("demo", "edges"):
        assert f"    {command} " in out.stdout


def test_no_command_is_a_usage_error():
    out = run_module()
    assert out.returncode == 2
    assert "usage: python -m xcorr" in out.stderr
    assert "COMMAND" in out.stderr


@pytest.mark.parametrize("command", ["demo", "edges"])
def test_command_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert "--backend NAME" in text
    assert ("--plot FILE.png" in text) == (command == "demo")
    assert ("-o OUT.png" in text) == (command == "edges")


# -- edges ----------------------------------------------------------------------------


def write_image(path: Path, fmt: str) -> np.ndarray:
    """A dark rectangle on a light background, as PNG (grayscale) or JPEG (RGB)."""
    from PIL import Image

    gray = np.full((24, 40), 220, dtype=np.uint8)
    gray[6:18, 10:30] = 20
    image = Image.fromarray(gray) if fmt == "PNG" else Image.fromarray(np.stack([gray] * 3, axis=-1))
    image.save(path, format=fmt)
    return gray


@pytest.mark.parametrize(("suffix", "fmt"), [(".png", "PNG"), (".jpg", "JPEG")])
def test_edges_on_an_image_file(backend, tmp_path, suffix, fmt, capsys):
    from PIL import Image

    source = tmp_path / f"box{suffix}"
    write_image(source, fmt)
    out = tmp_path / "edges.png"
    assert main(["edges", str(source), "-o", str(out), "--kernel", "seed", "--backend", backend.name]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(out) as img:
        assert (img.format, img.mode, img.size) == ("PNG", "L", (40, 24))
        edges = np.asarray(img)
    # [[1, -1]] in "same" mode: y[i, j] = x[i, j] - x[i, j+1]: the box's left and right sides
    columns = np.nonzero(edges.max(axis=0) > 127)[0].tolist()
    assert columns == [9, 29]
    assert edges[10, 9] > 200 and edges[10, 29] > 200
    assert edges[2, :].max() < 30 and edges[10, 12:28].max() < 30  # flat regions (JPEG noise aside)
    printed = capsys.readouterr()
    assert f"wrote {out} (40x24" in printed.out
    assert "read " in printed.err and f"on {backend.name}" in printed.err


def test_edges_sobel_finds_all_four_sides(tmp_path):
    from PIL import Image

    source = tmp_path / "box.png"
    write_image(source, "PNG")
    out = tmp_path / "edges.png"
    assert main(["edges", str(source), "-o", str(out)]) == 0  # sobel is the default
    with Image.open(out) as img:
        edges = np.asarray(img)
    strong = edges > 127
    assert strong[:, 9:11].any(axis=0).all() and strong[:, 29:31].any(axis=0).all()  # left, right
    assert strong[5:7, 15].any() and strong[17:19, 15].any()  # top, bottom
    assert not strong[12, 15:25].any()  # inside the box


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["edges", "{missing}", "-o", "{out}"], r"IMAGE '.*missing.png' does not exist"),
        (["edges", "{text}", "-o", "{out}"], r"IMAGE '.*notes.txt' is not an image file pillow can read"),
        (["edges", "{image}", "-o", "{tmp}/edges.jpg"], r"-o/--output must name a .png file; got '.*edges.jpg'"),
        (["edges", "{image}", "-o", "{out}", "--backend", "tensorflow"], r"unknown backend 'tensorflow'; choose one of numpy, "),
        (["edges", "{image}", "-o", "{tmp}/no/such/folder/edges.png"], r"-o/--output: the folder '.*folder' does not exist"),
        (["demo", "--backend", "mxnet"], r"unknown backend 'mxnet'"),
        (["demo", "--plot", "{tmp}/demo.svg"], r"--plot must name a .png file; got '.*demo.svg'"),
        (["demo", "--plot", "{tmp}/missing/demo.png"], r"--plot: the folder '.*missing' does not exist"),
    ],
)
def test_command_errors(tmp_path, capsys, args, match):
    import re

    write_image(tmp_path / "box.png", "PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    names = {
        "missing": tmp_path / "missing.png",
        "text": tmp_path / "notes.txt",
        "image": tmp_path / "box.png",
        "out": tmp_path / "edges.png",
        "tmp": tmp_path,
    }
    assert main([a.format(**names) for a in args]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert captured.out == ""  # nothing ran
    assert err.startswith(f"python -m xcorr {args[0]}: error: ")
    assert re.search(match, err), err
    assert not (tmp_path / "edges.png").exists()


@pytest.mark.parametrize("args", [["edges", "x.png"], ["edges", "x.png", "-o", "y.png", "--kernel", "canny"], ["demo", "--steps", "0"], ["demo", "--lr", "-1"], ["frobnicate"]])
def test_argument_errors_exit_with_usage(args, capsys):
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    assert "usage: python -m xcorr" in capsys.readouterr().err


def test_missing_extra_names_it(tmp_path, monkeypatch, capsys):
    write_image(tmp_path / "box.png", "PNG")
    monkeypatch.setitem(sys.modules, "PIL.Image", None)  # import PIL.Image now raises ImportError
    assert main(["edges", str(tmp_path / "box.png"), "-o", str(tmp_path / "e.png")]) == 2
    assert "needs pillow, which is not installed: pip install 'xcorr[plot]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", "--plot", str(tmp_path / "demo.png")]) == 2
    assert "--plot needs matplotlib, which is not installed: pip install 'xcorr[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "demo.png").exists()


# -- demo ---------------------------------------------------------------------------------


def demo_output(capsys, *args: str) -> str:
    assert main(["demo", *args]) == 0
    return capsys.readouterr().out


def block(text: str, title: str) -> str:
    """The lines after ``title`` up to the next line that is not part of an array."""
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = start
    while end < len(lines) and lines[end].startswith(("[", " [")):
        end += 1
    return "\n".join(lines[start:end])


def test_demo_prints_the_seed_numbers(backend, capsys):
    import re

    text = demo_output(capsys, "--backend", backend.name)
    assert text.splitlines()[0] == f'xcorr demo: the d2l notebook "2-D convolutional layer", on {backend.name}'
    # In [3]
    assert block(text, "corr2d(X, K) =") == "[[19 25]\n [37 43]]"
    # In [5] and In [9]
    assert block(text, "X = ones(6, 8); X[:, 2:6] = 0") == "\n".join(
        ("[" if i == 0 else " ") + "[1. 1. 0. 0. 0. 0. 1. 1.]" + ("]" if i == 5 else "") for i in range(6)
    )
    assert block(text, "Y = corr2d(X, K) =") == "\n".join(
        ("[" if i == 0 else " ") + "[ 0.  1.  0.  0.  0. -1.  0.]" + ("]" if i == 5 else "") for i in range(6)
    )
    # In [11]: the log every 10 steps, falling to 0.000
    steps = re.findall(r"^Step (\d+), loss (\d+\.\d{3})$", text, flags=re.MULTILINE)
    assert [int(s) for s, _ in steps] == [10, 20, 30, 40, 50]
    losses = [float(loss) for _, loss in steps]
    assert losses == sorted(losses, reverse=True) and losses[-1] == 0.0
    # In [12]: the learned kernel is [[1, -1]] and the bias 0, to the notebook's 4 digits or so
    weight = [float(v) for v in re.search(r"^weight: \[\[\s*(\S+)\s+(\S+)\]\]$", text, re.MULTILINE).groups()]
    bias = float(re.search(r"^bias: (\S+)$", text, re.MULTILINE).group(1))
    np.testing.assert_allclose(weight, [1.0, -1.0], atol=5e-3)
    assert abs(bias) < 1e-3
    # feature maps and receptive fields: the table and the measured field agree with the closed form
    table = block(text, "4. Feature maps and receptive fields: three 3x3 layers (stride 2, then dilation 2)")
    assert "[" not in table
    assert "2: Conv2D  3 s1 d2 same     13     2      2     6x6" in text
    assert "(measured from the gradient; the closed form predicts the same set: yes):" in text
    assert text.count("# " * 12 + "#") == 13  # a 13x13 field


def test_demo_prints_the_same_on_every_backend(backend, capsys):
    reference = demo_output(capsys, "--backend", "numpy").splitlines()
    text = demo_output(capsys, "--backend", backend.name).splitlines()
    assert text[1:] == reference[1:]


def test_readme_demo_command():
    # the README's and CI's command, as a newcomer runs it
    out = run_module("demo")
    assert out.returncode == 0, out.stderr
    assert "on numpy" in out.stdout.splitlines()[0]
    assert "Step 50, loss 0.000" in out.stdout
    assert out.stderr == ""


def test_demo_plot_is_a_png(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "demo.png"
    text = demo_output(capsys, "--plot", str(path), "--steps", "30")
    assert text.rstrip().endswith(f"wrote {path}")
    assert "Step 30, loss" in text and "Step 40" not in text
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(path) as img:
        img.verify()  # checks the chunks' CRCs
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (1200, 700)
        pixels = np.asarray(img.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # drawn, not blank


def test_readme_shows_what_the_demo_prints(capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    intro = "What `python -m xcorr demo` prints"
    assert intro in readme
    shown = readme.split(intro, 1)[1].split("```\n", 1)[1].split("\n```", 1)[0]
    assert shown == demo_output(capsys).rstrip("\n")


def test_long_runs_log_about_ten_times(capsys):
    import re

    text = demo_output(capsys, "--steps", "200", "--lr", "0.005")
    assert "lr 0.005, 200 steps" in text
    assert [int(s) for s in re.findall(r"^Step (\d+), loss", text, flags=re.MULTILINE)] == list(range(20, 201, 20))
