"""``python -m xcorr`` and the ``xcorr`` script: help, version, the seed demo on every backend, its plot, and
edge detection on image files (bit depths, kernels, bands, progress, atomic writes, one-line errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xcorr._cli import main

from matrix import require_module

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    """``python -m xcorr ARGS`` in a new process, optionally under a file-size limit (``ulimit -f``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "xcorr", *args]
    if limit_bytes is not None:  # set in the child itself: no fork of this (threaded) process
        setup = (
            f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes})); "
            "from xcorr._cli import run; run('python -m xcorr')"
        )
        command = [sys.executable, "-c", setup, *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


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
    assert ("-o OUT" in text) == (command == "edges")
    assert ("--kernel NAME | --kernel-file PATH" in text) == (command == "edges")
    assert "-q, --quiet" in text


# -- edges ----------------------------------------------------------------------------


def write_image(path: Path, fmt: str) -> np.ndarray:
    """A dark rectangle on a light background, as PNG (grayscale) or JPEG (RGB)."""
    from PIL import Image

    gray = np.full((24, 40), 220, dtype=np.uint8)
    gray[6:18, 10:30] = 20
    image = Image.fromarray(gray) if fmt == "PNG" else Image.fromarray(np.stack([gray] * 3, axis=-1))
    image.save(path, format=fmt)
    return gray


def png_bytes(width: int, height: int, bit_depth: int, color_type: int, rows: list[bytes]) -> bytes:
    """A PNG file written by hand (what pillow cannot write: 16-bit colour, a header with no pixels)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + row for row in rows))
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def read_back(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


def edges(*args: str) -> int:
    return main(["edges", *map(str, args)])


@pytest.mark.parametrize(("suffix", "fmt"), [(".png", "PNG"), (".jpg", "JPEG")])
def test_edges_on_an_image_file(backend, tmp_path, suffix, fmt, capsys):
    from PIL import Image

    source = tmp_path / f"box{suffix}"
    write_image(source, fmt)
    out = tmp_path / "edges.png"
    assert edges(source, "-o", out, "--kernel", "seed", "--backend", backend.name) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(out) as img:
        assert (img.format, img.mode, img.size) == ("PNG", "L", (40, 24))
        result = np.asarray(img)
    # [[1, -1]] in "same" mode: y[i, j] = x[i, j] - x[i, j+1]: the box's left and right sides
    columns = np.nonzero(result.max(axis=0) > 127)[0].tolist()
    assert columns == [9, 29]
    assert result[10, 9] > 200 and result[10, 29] > 200
    assert result[2, :].max() < 30 and result[10, 12:28].max() < 30  # flat regions (JPEG noise aside)
    printed = capsys.readouterr()
    # the peak is 200/255 for the PNG, near it for the JPEG
    assert printed.out.startswith(f"wrote {out} (40x24 PNG, 8-bit, 0..255 = edge strength 0..")
    peak = float(printed.out.split("edge strength 0..")[1].split()[0])
    assert abs(peak - 200 / 255) < (1e-6 if fmt == "PNG" else 0.05)
    assert "8-bit grayscale PNG" in printed.err or "8-bit RGB as luma JPEG" in printed.err
    assert f"on {backend.name}" in printed.err


def test_edges_sobel_finds_all_four_sides(tmp_path):
    source = tmp_path / "box.png"
    write_image(source, "PNG")
    out = tmp_path / "edges.png"
    assert edges(source, "-o", out) == 0  # sobel is the default
    strong = read_back(out) > 127
    assert strong[:, 9:11].any(axis=0).all() and strong[:, 29:31].any(axis=0).all()  # left, right
    assert strong[5:7, 15].any() and strong[17:19, 15].any()  # top, bottom
    assert not strong[12, 15:25].any()  # inside the box


def test_16_bit_png_is_read_at_its_depth_and_written_at_16_bits(tmp_path, capsys):
    # issue 15.6: convert("L") clipped 1000 and 60000 to 255, and the edges were all zero
    from PIL import Image

    values = np.full((8, 10), 1000, dtype=np.uint16)
    values[:, 5:] = 60000
    source = tmp_path / "edge16.png"
    Image.fromarray(values).save(source)
    out = tmp_path / "edges.png"
    assert edges(source, "-o", out, "--kernel", "seed") == 0
    printed = capsys.readouterr()
    peak = (60000 - 1000) / 65535
    assert "16-bit grayscale PNG, scaled by 1/65535" in printed.err
    assert f"16-bit, 0..65535 = edge strength 0..{peak:.6g} (strength = value * {peak / 65535:.6g})" in printed.out
    result = read_back(out)
    assert result.dtype == np.uint16 and result.shape == (8, 10)
    expected = np.zeros((8, 10), dtype=np.uint16)
    expected[:, 4] = 65535  # x[:, 4] - x[:, 5] = -peak
    np.testing.assert_array_equal(result, expected)
    # an 8-bit output of the same input says its own scale
    assert edges(source, "-o", tmp_path / "e8.png", "--kernel", "seed", "--depth", "8") == 0
    assert read_back(tmp_path / "e8.png").dtype == np.uint8
    assert f"8-bit, 0..255 = edge strength 0..{peak:.6g}" in capsys.readouterr().out


def test_float_tiff_is_used_as_is_and_float_output_is_unscaled(tmp_path, capsys):
    # issue 15.6: a float TIFF in [0, 1] became {0, 1}
    from PIL import Image
    from scipy import signal

    from xcorr._cli import read_image

    values = np.random.default_rng(1).random((9, 12)).astype(np.float32)
    source = tmp_path / "float.tif"
    Image.fromarray(values).save(source)
    image = read_image(source)
    np.testing.assert_array_equal(image.pixels, values)
    assert "32-bit float grayscale TIFF, values used as they are" in image.description
    out = tmp_path / "edges.tif"
    assert edges(source, "-o", out, "--kernel", "seed", "--depth", "float") == 0
    assert "float32 edge strength as computed" in capsys.readouterr().out
    expected = np.abs(signal.correlate2d(values.astype(np.float64), [[1, -1]], mode="same", boundary="symm"))
    np.testing.assert_allclose(read_back(out), expected, rtol=1e-6, atol=1e-7)
    # a float input defaults to a 16-bit PNG, not 8 bits
    assert edges(source, "-o", tmp_path / "edges.png", "--kernel", "seed") == 0
    assert read_back(tmp_path / "edges.png").dtype == np.uint16


def test_other_depths_and_colour(tmp_path):
    from PIL import Image

    from xcorr._cli import read_image

    # pillow opens 32-bit signed TIFFs as mode "I": scaled by the file's own range
    wide = np.array([[1, -300], [2**31 - 1, -(2**31)]], dtype=np.int32)
    Image.fromarray(wide).save(tmp_path / "i32.tif")
    image = read_image(tmp_path / "i32.tif")
    assert "32-bit signed grayscale TIFF, scaled by 1/2147483647" in image.description
    np.testing.assert_allclose(image.pixels, wide / (2**31 - 1), rtol=1e-7)
    # colour: luma in floating point, within pillow's own 8-bit rounding of the same weights
    rgb = np.random.default_rng(2).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    with Image.open(tmp_path / "rgb.png") as img:
        pillow_luma = np.asarray(img.convert("L"), dtype=np.float64) / 255
    image = read_image(tmp_path / "rgb.png")
    np.testing.assert_allclose(image.pixels, rgb @ [0.299, 0.587, 0.114] / 255, rtol=1e-6)
    assert np.abs(image.pixels - pillow_luma).max() <= 1 / 255
    # 16-bit colour PNG: pillow reads 8 bits per channel, and the log says so
    rows = [np.array([[1000, 2000, 60000], [65535, 0, 0]], dtype=">u2").tobytes()]
    (tmp_path / "rgb16.png").write_bytes(png_bytes(2, 1, 16, 2, rows))
    image = read_image(tmp_path / "rgb16.png")
    assert "the file has 16 bits per sample: pillow reads RGB at 8" in image.description
    np.testing.assert_allclose(image.pixels, [[(0.299 * 3 + 0.587 * 7 + 0.114 * 234) / 255, 0.299]], rtol=1e-6)


def oracle(name: str, x: np.ndarray) -> np.ndarray:
    """The edge strength of each named kernel, from scipy.ndimage's own filters ("reflect" = symmetric)."""
    from scipy import ndimage, signal

    if name == "seed":
        return np.abs(signal.correlate2d(x, [[1, -1]], mode="same", boundary="symm"))
    if name == "laplacian":
        return np.abs(ndimage.laplace(x, mode="reflect"))
    family, _, axis = name.partition("-")
    derivative = getattr(ndimage, family)
    if axis:
        return np.abs(derivative(x, axis=1 if axis == "x" else 0, mode="reflect"))
    return np.hypot(derivative(x, axis=1, mode="reflect"), derivative(x, axis=0, mode="reflect"))


NAMED = ["seed", "sobel-x", "sobel-y", "sobel", "prewitt-x", "prewitt-y", "prewitt", "laplacian"]


def test_kernels_are_the_ones_named():
    from xcorr._cli import KERNELS

    assert list(KERNELS) == NAMED


@pytest.mark.parametrize("name", NAMED)
def test_every_named_kernel_matches_scipy(tmp_path, name):
    from PIL import Image

    values = np.random.default_rng(3).random((13, 17)).astype(np.float32)
    values[4:9, 5:12] += 2  # a box, so that the derivatives have something to find
    Image.fromarray(values).save(tmp_path / "in.tif")
    out = tmp_path / "out.tif"
    assert edges(tmp_path / "in.tif", "-o", out, "--kernel", name, "--depth", "float", "-q") == 0
    np.testing.assert_allclose(read_back(out), oracle(name, values.astype(np.float64)), rtol=2e-6, atol=2e-6)


def test_kernel_files(tmp_path, capsys):
    from PIL import Image

    from xcorr._cli import KERNELS

    values = np.random.default_rng(4).random((11, 14)).astype(np.float32)
    Image.fromarray(values).save(tmp_path / "in.tif")
    assert edges(tmp_path / "in.tif", "-o", tmp_path / "named.tif", "--kernel", "laplacian", "--depth", "float") == 0
    laplacian = KERNELS["laplacian"][0]
    np.save(tmp_path / "k.npy", laplacian)
    (tmp_path / "k.txt").write_text("0 1 0\n1 -4 1\n0 1 0\n")
    for name in ("k.npy", "k.txt"):
        out = tmp_path / f"{name}.tif"
        assert edges(tmp_path / "in.tif", "-o", out, "--kernel-file", tmp_path / name, "--depth", "float") == 0
        np.testing.assert_array_equal(read_back(out), read_back(tmp_path / "named.tif"))
    assert "the k.txt (3x3) kernel" in capsys.readouterr().err
    # a one-line text file is a one-row kernel; an asymmetric 2x3 kernel keeps its orientation
    (tmp_path / "row.txt").write_text("1 -1\n")
    (tmp_path / "k23.txt").write_text("1 2 3\n-4 0 5\n")
    from scipy import signal

    for name, kernel in (("row.txt", [[1, -1]]), ("k23.txt", [[1, 2, 3], [-4, 0, 5]])):
        out = tmp_path / f"{name}.tif"
        assert edges(tmp_path / "in.tif", "-o", out, "--kernel-file", tmp_path / name, "--depth", "float") == 0
        expected = np.abs(signal.correlate2d(values.astype(np.float64), kernel, mode="same", boundary="symm"))
        np.testing.assert_allclose(read_back(out), expected, rtol=1e-5, atol=1e-6)


def one_line_error(capsys, command: str = "edges") -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"python -m xcorr {command}: error: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["edges", "{missing}", "-o", "{out}"], r"IMAGE '.*missing.png' does not exist"),
        (["edges", "{text}", "-o", "{out}"], r"IMAGE '.*notes.txt' is not an image file pillow can read"),
        (["edges", "{truncated}", "-o", "{out}"], r"IMAGE '.*cut.png' is not an image file pillow can read"),
        (["edges", "{tmp}", "-o", "{out}"], r"IMAGE '.*' is a folder, not an image file"),
        (["edges", "{bomb}", "-o", "{out}"], r"IMAGE '.*bomb.png' is refused by pillow's decompression-bomb guard .*10000000000 pixels"),
        (["edges", "{nan}", "-o", "{out}"], r"IMAGE '.*nan.tif' has 1 NaN or infinite pixels"),
        (["edges", "{image}", "-o", "{tmp}/edges.bmp"], r"-o/--output must name a .png/.jpg/.jpeg/.tif/.tiff file; got '.*edges.bmp'"),
        (["edges", "{image}", "-o", "{folder}"], r"-o/--output: '.*folder.png' is a folder; name a file inside it"),
        (["edges", "{image}", "-o", "{tmp}/no/such/folder/edges.png"], r"-o/--output: the folder '.*folder' does not exist"),
        (["edges", "{image}", "-o", "{tmp}/e.jpg", "--depth", "16"], r"--depth 16: JPEG files hold 8-bit samples only"),
        (["edges", "{wide}", "-o", "{tmp}/e.jpg"], r"-o/--output: JPEG holds at most 65500 pixels a side; the image is 65501x1"),
        (["edges", "{image}", "-o", "{out}", "--depth", "float"], r"--depth float: only TIFF holds float samples"),
        (["edges", "{image}", "-o", "{out}", "--backend", "tensorflow"], r"unknown backend 'tensorflow'; choose one of numpy, "),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{tmp}/none.npy"], r"--kernel-file '.*none.npy' does not exist"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{words}"], r"--kernel-file '.*words.txt' is not a text table of numbers"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{text}"], r"--kernel-file '.*notes.txt' is not a text table"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{ragged}"], r"--kernel-file '.*ragged.txt' is not a text table"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{cube}"], r"--kernel-file '.*cube.npy' must hold a non-empty 2-D kernel; got shape \(2, 2, 2\)"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{complex}"], r"--kernel-file '.*complex.npy' must hold real numbers; got dtype complex128"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{objects}"], r"--kernel-file '.*objects.npy' is not a .npy array: .*allow_pickle"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{nankernel}"], r"--kernel-file '.*nank.txt' has NaN or infinite values"),
        (["edges", "{image}", "-o", "{out}", "--kernel-file", "{emptykernel}"], r"--kernel-file '.*empty.txt' is empty: it holds no numbers"),
        (["demo", "--backend", "mxnet"], r"unknown backend 'mxnet'"),
        (["demo", "--plot", "{tmp}/demo.svg"], r"--plot must name a .png file; got '.*demo.svg'"),
        (["demo", "--plot", "{tmp}/missing/demo.png"], r"--plot: the folder '.*missing' does not exist"),
        (["demo", "--plot", "{folder}"], r"--plot: '.*folder.png' is a folder"),
    ],
)
def test_command_errors(tmp_path, capsys, args, match):
    import re

    from PIL import Image

    write_image(tmp_path / "box.png", "PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "cut.png").write_bytes((tmp_path / "box.png").read_bytes()[:60])
    (tmp_path / "bomb.png").write_bytes(png_bytes(100_000, 100_000, 8, 0, []))
    Image.fromarray(np.array([[0.5, np.nan]], dtype=np.float32)).save(tmp_path / "nan.tif")
    (tmp_path / "folder.png").mkdir()
    Image.new("L", (65501, 1)).save(tmp_path / "wide.png")
    (tmp_path / "words.txt").write_text("one two\nthree four\n")
    (tmp_path / "ragged.txt").write_text("1 2 3\n4 5\n")
    (tmp_path / "nank.txt").write_text("1 nan\n")
    (tmp_path / "empty.txt").write_text("")
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    np.save(tmp_path / "complex.npy", np.ones((2, 2), dtype=complex))
    np.save(tmp_path / "objects.npy", np.array([[1, None]], dtype=object), allow_pickle=True)
    names = {
        "missing": tmp_path / "missing.png",
        "text": tmp_path / "notes.txt",
        "truncated": tmp_path / "cut.png",
        "bomb": tmp_path / "bomb.png",
        "nan": tmp_path / "nan.tif",
        "image": tmp_path / "box.png",
        "out": tmp_path / "edges.png",
        "folder": tmp_path / "folder.png",
        "wide": tmp_path / "wide.png",
        "words": tmp_path / "words.txt",
        "ragged": tmp_path / "ragged.txt",
        "nankernel": tmp_path / "nank.txt",
        "emptykernel": tmp_path / "empty.txt",
        "cube": tmp_path / "cube.npy",
        "complex": tmp_path / "complex.npy",
        "objects": tmp_path / "objects.npy",
        "tmp": tmp_path,
    }
    assert main([a.format(**names) for a in args]) == 2
    err = one_line_error(capsys, args[0])
    assert re.search(match, err), err
    assert not (tmp_path / "edges.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_backend_not_installed_names_it(tmp_path, capsys, monkeypatch):
    write_image(tmp_path / "box.png", "PNG")
    monkeypatch.setitem(sys.modules, "jax.numpy", None)  # import jax.numpy now raises ImportError
    assert edges(tmp_path / "box.png", "-o", tmp_path / "e.png", "--backend", "jax") == 2
    err = one_line_error(capsys)
    assert "backend 'jax' needs jax, which is not installed" in err and err.endswith(": pip install 'xcorr[jax]'\n")


@pytest.mark.parametrize(
    "args",
    [
        ["edges", "x.png"],
        ["edges", "x.png", "-o", "y.png", "--kernel", "canny"],
        ["edges", "x.png", "-o", "y.png", "--kernel", "sobel", "--kernel-file", "k.npy"],
        ["edges", "x.png", "-o", "y.png", "--depth", "12"],
        ["demo", "--steps", "0"],
        ["demo", "--steps", "ten"],
        ["demo", "--lr", "-1"],
        ["demo", "--lr", "inf"],
        ["frobnicate"],
    ],
)
def test_argument_errors_exit_with_usage(args, capsys):
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2
    assert "usage: python -m xcorr" in capsys.readouterr().err


def test_missing_extra_names_it(tmp_path, monkeypatch, capsys):
    write_image(tmp_path / "box.png", "PNG")
    monkeypatch.setitem(sys.modules, "PIL.Image", None)  # import PIL.Image now raises ImportError
    assert edges(tmp_path / "box.png", "-o", tmp_path / "e.png") == 2
    assert "needs pillow, which is not installed: pip install 'xcorr[cli]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", "--plot", str(tmp_path / "demo.png")]) == 2
    assert "--plot needs matplotlib, which is not installed: pip install 'xcorr[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "demo.png").exists()


# -- writing: atomic, permissions, failures ---------------------------------------------------


def test_output_replaces_an_existing_file_and_keeps_its_permissions(tmp_path):
    write_image(tmp_path / "box.png", "PNG")
    out = tmp_path / "edges.png"
    out.write_bytes(b"old")
    out.chmod(0o640)
    link = tmp_path / "link.png"
    link.symlink_to(out)
    assert edges(tmp_path / "box.png", "-o", link, "-q") == 0
    assert link.is_symlink() and out.read_bytes()[:8] == PNG_SIGNATURE  # written through the link
    assert out.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.png", "edges.png", "link.png"]


def test_a_failed_write_leaves_the_old_file(tmp_path, capsys, monkeypatch):
    import errno

    from PIL import Image

    write_image(tmp_path / "box.png", "PNG")
    out = tmp_path / "keep.png"
    assert edges(tmp_path / "box.png", "-o", out, "-q") == 0
    before = out.read_bytes()
    capsys.readouterr()

    def full_disk(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Image.Image, "save", full_disk)
    assert edges(tmp_path / "box.png", "-o", out, "--kernel", "seed", "-q") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"-o/--output: writing '{out}' failed, the previous file is unchanged: No space left on device" in err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.png", "keep.png"]
    assert edges(tmp_path / "box.png", "-o", tmp_path / "new.png", "-q") == 2
    new = tmp_path / "new.png"
    assert f"writing '{new}' failed, no file was left: No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.png", "keep.png"]


def test_file_size_limit_leaves_the_old_output(tmp_path):
    # issue 15.7: a write cut short by the file-size limit left a truncated file and a traceback
    from PIL import Image

    noise = np.random.default_rng(5).integers(0, 65536, (64, 64), dtype=np.uint16)
    Image.fromarray(noise).save(tmp_path / "noise.png")  # its 16-bit edges compress to > 8 KiB
    out = tmp_path / "keep.png"
    write_image(out, "PNG")
    before = out.read_bytes()
    assert len(before) < 4096

    # the CLI ignores SIGXFSZ itself, so that the write fails with EFBIG instead of killing it
    done = run_module("edges", str(tmp_path / "noise.png"), "-o", str(out), "-q", limit_bytes=4096)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "the previous file is unchanged: File too large" in done.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png", "noise.png"]
    # without the limit, the same command replaces it
    done = run_module("edges", str(tmp_path / "noise.png"), "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert read_back(out).dtype == np.uint16 and len(out.read_bytes()) > 4096


# -- bands and progress ------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMED)
def test_bands_equal_one_call(name):
    from xcorr._cli import KERNELS, edge_map, load_backend

    numpy = load_backend("numpy")
    image = np.random.default_rng(6).random((150, 180)).astype(np.float32)
    whole = edge_map(numpy, image, KERNELS[name], band_rows=150)
    for rows in (1, 7, 64):
        np.testing.assert_array_equal(edge_map(numpy, image, KERNELS[name], band_rows=rows), whole)


def test_bands_equal_one_call_for_a_tall_kernel_and_on_every_backend(backend):
    from xcorr._cli import edge_map, load_backend

    lib = load_backend(backend.name)
    image = np.random.default_rng(7).random((41, 23)).astype(np.float32)
    tall = np.random.default_rng(8).standard_normal((9, 2))  # a halo of 8 rows
    whole = edge_map(lib, image, (tall,), band_rows=41)
    # bands of 12 rows: 4 band shapes (jax compiles once per shape)
    np.testing.assert_array_equal(edge_map(lib, image, (tall,), band_rows=12), whole)
    np.testing.assert_allclose(whole, oracle_correlate(image, tall), rtol=1e-5, atol=1e-5)


def oracle_correlate(x, k):
    from scipy import signal

    return np.abs(signal.correlate2d(x.astype(np.float64), k, mode="same", boundary="symm"))


class FakeTerminal:
    """A stderr that says it is a terminal, so that tqdm draws its bar."""

    def __init__(self) -> None:
        import io

        self.buffer = io.StringIO()

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("quiet", [False, True])
def test_edges_progress_bar_on_a_terminal(tmp_path, monkeypatch, capsys, quiet):
    from xcorr import _cli, _cli_base

    write_image(tmp_path / "box.png", "PNG")
    monkeypatch.setattr(_cli_base, "PROGRESS_DELAY_S", 0)
    monkeypatch.setattr(_cli, "BAND_PIXELS", 40 * 4)  # 4 rows a band: 6 bands
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    args = [tmp_path / "box.png", "-o", tmp_path / "e.png"] + (["--quiet"] if quiet else [])
    assert edges(*args) == 0
    shown = terminal.buffer.getvalue()
    if quiet:
        assert shown == ""
    else:
        assert "correlating:" in shown and "/24 [" in shown and "row/s]" in shown
        assert "writing PNG: 100%" in shown
        assert "read " in shown
    assert "wrote " in capsys.readouterr().out


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys):
    from xcorr import _cli, _cli_base

    write_image(tmp_path / "box.png", "PNG")
    monkeypatch.setattr(_cli_base, "PROGRESS_DELAY_S", 0)
    monkeypatch.setattr(_cli, "BAND_PIXELS", 40 * 4)
    assert edges(tmp_path / "box.png", "-o", tmp_path / "e.png") == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("read ") and len(err.splitlines()) == 2
    assert "\r" not in err and "row" not in err


def test_demo_progress_bar_leaves_the_log_alone(monkeypatch, capsys):
    from xcorr import _cli_base

    quiet = demo_output(capsys, "--steps", "200", "--lr", "0.005")
    monkeypatch.setattr(_cli_base, "PROGRESS_DELAY_S", 0)
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert demo_output(capsys, "--steps", "200", "--lr", "0.005") == quiet
    assert "training:" in terminal.buffer.getvalue() and "/200 [" in terminal.buffer.getvalue()
    terminal.buffer.truncate(0)
    assert demo_output(capsys, "--steps", "200", "--lr", "0.005", "--quiet") == quiet
    assert terminal.buffer.getvalue() == ""


def test_demo_training_in_chunks_equals_one_fit():
    import xcorr
    from xcorr._cli import load_backend
    from xcorr._demo import make_layer, seed_image, train

    numpy = load_backend("numpy")
    x = seed_image()
    y = xcorr.corr2d(x, np.array([[1.0, -1.0]], dtype=np.float32))
    one, losses = xcorr.fit(make_layer(numpy, (1, 2)), x, y, lr=0.01, steps=230, loss="sse")
    chunked, chunk_losses = train(make_layer(numpy, (1, 2)), x, y, lr=0.01, steps=230, log_every=23, quiet=True)
    assert chunk_losses == losses
    np.testing.assert_array_equal(chunked.weight, one.weight)
    np.testing.assert_array_equal(chunked.bias, one.bias)


# -- version and the console script ------------------------------------------------------------


def test_version():
    import importlib.metadata

    import xcorr

    done = run_module("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"xcorr {xcorr.__version__}\n"
    assert importlib.metadata.version("xcorr") == xcorr.__version__


def test_console_script(tmp_path):
    import importlib.metadata
    import shutil

    (script,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "xcorr"]
    assert script.value == "xcorr._cli:run"
    path = shutil.which("xcorr", path=str(Path(sys.executable).parent))
    assert path is not None, f"no xcorr script beside {sys.executable}: pip install -e ."
    done = subprocess.run([path, "--version"], check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("xcorr ")
    done = subprocess.run(
        [path, "edges", "missing.png", "-o", "out.png"], check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr == "xcorr edges: error: IMAGE 'missing.png' does not exist\n"


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


def test_docs_show_what_the_demo_prints(capsys):
    # the getting-started page of the documentation shows the demo's whole output
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    intro = "What `python -m xcorr demo` prints"
    assert intro in page
    shown = page.split(intro, 1)[1].split("```\n", 1)[1].split("\n```", 1)[0]
    assert shown == demo_output(capsys).rstrip("\n")


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_is_a_short_front_page():
    text = readme()
    assert len(text.splitlines()) <= 150
    # the two commands .ci/run runs, as written there
    assert "python -m pip install -e '.[all,test]' && python -m xcorr demo" in text
    assert "python -m pip install -e '.[all,test]' && python -m pytest -n auto" in text
    assert "docs/index.md" in text and (ROOT / "docs" / "index.md").is_file()


def test_readme_example_runs_and_prints_what_it_says(capsys):
    require_module("torch")
    code = readme().split("## Example", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["[[19 25]", " [37 43]]"]
    assert out[2] == "Tensor tensor([[ 0.9985, -0.9985]])"


def test_long_runs_log_about_ten_times(capsys):
    import re

    text = demo_output(capsys, "--steps", "200", "--lr", "0.005")
    assert "lr 0.005, 200 steps" in text
    assert [int(s) for s in re.findall(r"^Step (\d+), loss", text, flags=re.MULTILINE)] == list(range(20, 201, 20))
