"""``xcorr`` / ``python -m xcorr``: the seed notebook as a command, and edge detection on image files.

Commands
--------
demo   the d2l "2-D convolutional layer" notebook, in order, with its numbers,
       on any backend (``--backend``), optionally drawn (``--plot FILE.png``)
edges  edge detection on an image file (PNG, JPEG, TIFF; 8-bit, 16-bit or
       float), written as PNG, JPEG or TIFF

Every error a user can fix (a missing or unreadable file, an image too large
for pillow's decompression-bomb guard, an output that cannot be written, a bad
kernel file, a backend that is not installed) is one line on stderr and exit
status 2. Outputs are written to a temporary file in the target folder and
renamed over the target only when complete, so a failed write leaves any
previous file as it was.

Frameworks, matplotlib and pillow are imported only by the command that needs
them, with an error naming the extra to install when they are missing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import secrets
import signal
import stat
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

import xcorr

from . import _adapter

__all__ = ["main"]

PROG = "python -m xcorr"


# -- backends -------------------------------------------------------------------

# Backend names: the adapter registry's libraries, and "<library>_gpu" (or
# "<library>_cuda") for a library's GPU device.
GPU_SUFFIXES = ("_gpu", "_cuda")


class CommandError(Exception):
    """A problem the user can fix (missing extra, unreadable file): printed without a traceback."""


@dataclass(frozen=True)
class Backend:
    """How the CLI moves NumPy data onto one array library (and device) and back."""

    name: str  # as the user wrote it: "torch", "torch_cuda", "jax_gpu", ...
    library: str  # the registry name: "torch", "jax", ...
    adapter: Any
    device: Any  # a device of the library, or None for its default

    def asarray(self, a: np.ndarray):
        return self.adapter.from_numpy(a, device=self.device)

    def to_numpy(self, y) -> np.ndarray:
        return self.adapter.to_numpy(y)


def load_backend(name: str) -> Backend:
    library, kind = _adapter.resolve_name(name), "cpu"
    for suffix in GPU_SUFFIXES:
        if library.endswith(suffix):
            library, kind = library.removesuffix(suffix), "gpu"
    if library not in _adapter.known_names():
        names = ", ".join(_adapter.known_names())
        msg = f"unknown backend {name!r}; choose one of {names}, or NAME_gpu for a GPU device"
        raise CommandError(msg)
    lib = _adapter.library(library)
    if lib is not None:
        try:
            importlib.import_module(lib.array_module)
        except ImportError as err:
            hint = f": pip install 'xcorr[{lib.extra}]'" if lib.extra else ""
            msg = f"backend {name!r} needs {lib.array_module.split('.')[0]}, which is not installed ({err}){hint}"
            raise CommandError(msg) from None
    adapter = _adapter.adapter_named(library)
    try:
        device = adapter.device(kind)
    except LookupError as err:
        msg = f"backend {name!r} needs a GPU device: {err}"
        raise CommandError(msg) from None
    return Backend(name, library, adapter, device)


def _require(module: str, purpose: str, extra: str):
    """Import an optional dependency, or explain which extra installs it."""
    package = {"PIL": "pillow"}.get(module.split(".")[0], module.split(".")[0])
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"{purpose} needs {package}, which is not installed: pip install 'xcorr[{extra}]'"
        raise CommandError(msg) from None


# -- output files -------------------------------------------------------------------

# file suffix -> pillow format name
IMAGE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def check_output_path(path: Path, option: str, suffixes: tuple[str, ...]) -> None:
    """Fail before any work if ``path`` cannot become the output file."""
    if path.suffix.lower() not in suffixes:
        msg = f"{option} must name a {'/'.join(suffixes)} file; got {str(path)!r}"
        raise CommandError(msg)
    if path.is_dir():
        msg = f"{option}: {str(path)!r} is a folder; name a file inside it"
        raise CommandError(msg)
    folder = path.parent
    if not folder.is_dir():
        msg = f"{option}: the folder {str(folder)!r} does not exist"
        raise CommandError(msg)
    if not os.access(folder, os.W_OK | os.X_OK):
        msg = f"{option}: the folder {str(folder)!r} is not writable"
        raise CommandError(msg)
    if path.exists() and not os.access(path, os.W_OK):
        msg = f"{option}: {str(path)!r} exists and is not writable"
        raise CommandError(msg)


def write_atomically(path: Path, write: Callable[[IO[bytes]], None], option: str) -> None:
    """Write a file through ``write(file)`` so that ``path`` is either the old file or the new one.

    The bytes go to a temporary file in the same folder, are flushed to disk,
    and only then renamed over ``path`` (``os.replace``: atomic on POSIX and
    Windows). On any failure the temporary file is removed and ``path`` is
    untouched. A symbolic link is followed: its target is replaced, the link
    stays. An existing file keeps its permission bits; a new one gets the
    umask's, as ``open`` would give it.
    """
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    while True:
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as err:
            msg = f"{option}: cannot create a file in {str(target.parent)!r}: {err.strerror or err}"
            raise CommandError(msg) from None
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(err, OSError):
            kept = "the previous file is unchanged" if mode is not None else "no file was left"
            msg = f"{option}: writing {str(path)!r} failed, {kept}: {err.strerror or err}"
            raise CommandError(msg) from None
        raise
    _sync_folder(target.parent)


def _sync_folder(folder: Path) -> None:
    """Flush the rename to disk where the platform allows opening a folder (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- progress -------------------------------------------------------------------------

# A bar appears only once a run has lasted this long, so short runs print nothing.
PROGRESS_DELAY_S = 0.5


def progress(total: int, *, unit: str, desc: str, quiet: bool):
    """A tqdm bar on stderr: hidden with ``--quiet``, when stderr is not a terminal, and for short runs."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        desc=desc,
        file=sys.stderr,
        disable=True if quiet else None,  # None: tqdm disables itself when the file is not a TTY
        delay=PROGRESS_DELAY_S,
        leave=False,
        dynamic_ncols=True,
    )


def _show(a: np.ndarray) -> str:
    with np.printoptions(precision=4, suppress=False):
        return np.array2string(np.asarray(a))


# -- demo -----------------------------------------------------------------------


@dataclass
class DemoResult:
    """What the demo computed, as NumPy arrays: what ``--plot`` draws and tests check."""

    backend: str
    corr: np.ndarray
    image: np.ndarray
    edges: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    losses: list[float]
    stack_input_shape: tuple[int, int]
    stack_index: tuple[int, int]
    gradient: np.ndarray
    predicted: np.ndarray
    feature_maps: list[np.ndarray]


def seed_image() -> np.ndarray:
    """The notebook's 6x8 image: ones with a band of zeros in columns 2..5."""
    image = np.ones((6, 8), dtype=np.float32)
    image[:, 2:6] = 0
    return image


def make_layer(backend: Backend, kernel_size, *, weight=None, bias=None, **options):
    """An ``xcorr.Conv2D`` on ``backend`` (its device too), optionally with given parameters."""
    layer: Any = xcorr.Conv2D(kernel_size, backend=backend.library, **options)  # a jax pytree or a torch module too
    given = {"weight": weight, "bias": bias}
    params = {
        name: backend.asarray(np.asarray(backend.to_numpy(getattr(layer, name)) if value is None else value, dtype=np.float32))
        for name, value in given.items()
        if value is not None or getattr(layer, name) is not None
    }
    return backend.adapter.with_parameters(layer, params)


def demo_stack(backend: Backend) -> list:
    """The small stack whose receptive field the demo measures: three 3x3 Conv2D layers.

    The second has stride 2 and the third dilation 2 ("same" mode). All
    weights are 1/9, so that no gradient cancels by accident.
    """
    weight = np.full((3, 3), 1 / 9)
    return [
        make_layer(backend, 3, weight=weight, bias=0.0, **options)
        for options in ({}, {"stride": 2}, {"dilation": 2, "mode": "same"})
    ]


def run_demo(backend: Backend, *, steps: int = 50, lr: float = 0.01, quiet: bool = False) -> DemoResult:
    """Print the notebook's steps and numbers; return them for plotting and tests."""
    def say(*lines: str) -> None:
        for line in lines:
            print(line)
        sys.stdout.flush()

    say(f'xcorr demo: the d2l notebook "2-D convolutional layer", on {backend.name}', "")

    # In [3]: corr2d of a 3x3 input with a 2x2 kernel.
    X = backend.asarray(np.arange(9, dtype=np.int64).reshape(3, 3))
    K = backend.asarray(np.array([[0, 1], [2, 3]], dtype=np.int64))
    corr = backend.to_numpy(xcorr.corr2d(X, K))
    say("1. Cross-correlation", "X =", _show(backend.to_numpy(X)), "K =", _show(backend.to_numpy(K)))
    say("corr2d(X, K) =", _show(corr), "")

    # In [5]-[9]: edge detection.
    image = seed_image()
    X = backend.asarray(image)
    K = backend.asarray(np.array([[1, -1]], dtype=np.int64))
    Y = xcorr.corr2d(X, K)
    edges = backend.to_numpy(Y)
    say("2. Edge detection", "X = ones(6, 8); X[:, 2:6] = 0", _show(image), "K = [[1, -1]]")
    say("Y = corr2d(X, K) =", _show(edges), "")

    # In [11]-[12]: learn K back from X and Y.
    say(
        f"3. Learning the kernel from X and Y: Conv2D(kernel_size=(1, 2)), lr {lr}, {steps} steps, "
        "squared error",
        "(from Conv2D's seed-0 random start: the notebook's torch.randn start differs, "
        "and so do the first losses)",
    )
    layer = make_layer(backend, (1, 2))
    # the notebook's log every 10 steps; about 10 log lines for longer runs
    log_every = 10 if steps <= 100 else steps // 10
    layer, losses = train(layer, X, Y, lr=lr, steps=steps, log_every=log_every, quiet=quiet)
    weight, bias = backend.to_numpy(layer.weight), backend.to_numpy(layer.bias)
    say(f"weight: {_show(weight)}", f"bias: {_show(bias)}", "")

    # Feature maps and receptive fields.
    say("4. Feature maps and receptive fields: three 3x3 layers (stride 2, then dilation 2)")
    shape = (16, 16)
    layers = demo_stack(backend)
    rf = xcorr.receptive_field(layers, input_shape=shape)
    say(str(rf), "")
    x = backend.asarray(np.random.default_rng(0).random(shape, dtype=np.float32))
    maps = [backend.to_numpy(m) for m in xcorr.feature_maps(layers, x)]
    index = (2, 2)
    measured = xcorr.empirical_receptive_field(layers, x, index)
    predicted = rf.mask(index, shape)
    say(
        f"Output {index} of the last feature map depends on the input elements marked #",
        "(measured from the gradient; the closed form predicts the same set: "
        f"{'yes' if np.array_equal(measured.mask, predicted) else 'NO'}):",
        _ascii_mask(measured.mask),
    )
    return DemoResult(
        backend.name,
        corr, image, edges, weight, bias, losses, shape, index, measured.gradient, predicted, maps
    )


def train(layer, X, Y, *, lr: float, steps: int, log_every: int, quiet: bool):
    """``xcorr.fit`` with the notebook's log and a progress bar for long runs.

    Plain gradient descent keeps no state but the parameters, so ``steps``
    steps run as consecutive ``fit`` calls (up to about 100, ending at every
    log step) compute the same parameters and losses as one call.
    """
    ends = set(range(max(1, steps // 100), steps + 1, max(1, steps // 100)))
    ends |= set(range(log_every, steps + 1, log_every)) | {steps}
    losses: list[float] = []
    with progress(steps, unit="step", desc="training", quiet=quiet) as bar:
        for end in sorted(ends):
            layer, chunk = xcorr.fit(layer, X, Y, lr=lr, steps=end - len(losses), loss="sse")
            losses += chunk
            bar.update(len(chunk))
            if end % log_every == 0:
                bar.write(f"Step {end}, loss {losses[-1]:.3f}", file=sys.stdout)
    sys.stdout.flush()
    return layer, losses


def _ascii_mask(mask: np.ndarray) -> str:
    return "\n".join(" ".join("#" if v else "." for v in row) for row in mask)


def plot_demo(result: DemoResult, path: Path) -> None:
    """Draw the input, the kernel, the feature map and the learning curve (and the field) to a PNG."""
    _require("matplotlib", "--plot", "plot")
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    fig = Figure(figsize=(12, 7), layout="constrained")
    fig.suptitle(f'xcorr demo on {result.backend}: the d2l notebook "2-D convolutional layer"')
    axes = fig.subplots(2, 3)
    panels = [
        (axes[0, 0], result.image, "input X (6x8)", "gray"),
        (axes[0, 1], result.weight, "learned kernel (target [[1, -1]])", "coolwarm"),
        (axes[0, 2], result.edges, "feature map Y = corr2d(X, K)", "coolwarm"),
    ]
    for ax, data, title, cmap in panels:
        limit = float(np.max(np.abs(data))) or 1.0
        vmin = 0.0 if cmap == "gray" else -limit
        im = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=limit)
        for (i, j), value in np.ndenumerate(data):
            dark = cmap == "gray" and value < (vmin + limit) / 2
            ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=8, color="w" if dark else "k")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)

    ax = axes[1, 0]
    steps = np.arange(1, len(result.losses) + 1)
    ax.semilogy(steps, np.maximum(result.losses, np.finfo(np.float64).tiny))
    ax.set_xlabel("step")
    ax.set_ylabel("squared error")
    ax.set_title("learning curve")
    ax.grid(True, which="both", alpha=0.3)

    ax = axes[1, 1]
    ax.imshow(np.abs(result.gradient).reshape(result.stack_input_shape), cmap="viridis")
    rows, cols = np.nonzero(result.predicted)
    top, left = rows.min(), cols.min()
    ax.add_patch(_rectangle(left - 0.5, top - 0.5, cols.max() - left + 1, rows.max() - top + 1))
    ax.set_title(f"receptive field of output {result.stack_index}\n|gradient| and closed-form box")

    ax = axes[1, 2]
    last = result.feature_maps[-1]
    im = ax.imshow(last, cmap="viridis")
    ax.add_patch(_rectangle(result.stack_index[1] - 0.5, result.stack_index[0] - 0.5, 1, 1))
    ax.set_title(f"last feature map {last.shape[0]}x{last.shape[1]}")
    fig.colorbar(im, ax=ax, shrink=0.8)

    write_atomically(path, lambda file: fig.savefig(file, format="png", dpi=100), "--plot")


def _rectangle(x, y, w, h):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor="red", linewidth=2)


def command_demo(args) -> int:
    backend = load_backend(args.backend)
    if args.plot is not None:  # fail before the work, not after
        check_output_path(args.plot, "--plot", (".png",))
        _require("matplotlib", "--plot", "plot")
    result = run_demo(backend, steps=args.steps, lr=args.lr, quiet=args.quiet)
    if args.plot is not None:
        plot_demo(result, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


# -- edges ------------------------------------------------------------------------

_SOBEL_X = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
_PREWITT_X = np.array([[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]])

# name -> the kernels whose responses make the edge strength: |response| for one
# kernel, the gradient magnitude sqrt(rx^2 + ry^2) for a pair. "-x" kernels
# respond to changes along x (from one column to the next: vertical edges),
# "-y" kernels to changes along y (horizontal edges).
KERNELS: dict[str, tuple[np.ndarray, ...]] = {
    # the notebook's kernel: vertical edges only (a change from one column to the next)
    "seed": (np.array([[1.0, -1.0]]),),
    "sobel-x": (_SOBEL_X,),
    "sobel-y": (_SOBEL_X.T,),
    "sobel": (_SOBEL_X, _SOBEL_X.T),
    "prewitt-x": (_PREWITT_X,),
    "prewitt-y": (_PREWITT_X.T,),
    "prewitt": (_PREWITT_X, _PREWITT_X.T),
    "laplacian": (np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),),
}
KERNEL_HELP = {
    "seed": "the notebook's [[1, -1]]",
    "sobel-x": "Sobel, vertical edges",
    "sobel-y": "Sobel, horizontal edges",
    "sobel": "Sobel gradient magnitude (default)",
    "prewitt-x": "Prewitt, vertical edges",
    "prewitt-y": "Prewitt, horizontal edges",
    "prewitt": "Prewitt gradient magnitude",
    "laplacian": "the 5-point Laplacian [[0, 1, 0], [1, -4, 1], [0, 1, 0]]",
}

# Luma weights of ITU-R BT.601, the ones pillow's convert("L") uses.
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class InputImage:
    """An image file read as one float32 plane, and how its values were scaled."""

    pixels: np.ndarray  # float32, (height, width)
    description: str  # e.g. "16-bit grayscale PNG, scaled by 1/65535"
    high_depth: bool  # more than 8 bits per sample: the output defaults to 16 bits


def _rawmode(img) -> str:
    """The pixel layout in the file as pillow's decoder sees it (e.g. "RGB;16B"), or ""."""
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        if isinstance(args, str):
            return args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            return args[0]
    return ""


def _integer_range(img) -> tuple[int, str]:
    """(largest value, name) of the integer samples of a pillow "I" image.

    pillow opens every integer image wider than 8 bits that is not 16-bit
    unsigned as mode "I" (int32): the file's own bit depth and signedness
    come from the TIFF tags BitsPerSample (258) and SampleFormat (339); other
    formats give no more than 16-bit unsigned.
    """
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        sample_format = tags.get(339, 1)
        signed = int(sample_format[0] if isinstance(sample_format, tuple) else sample_format) == 2
        if signed:
            return (1 << (bits - 1)) - 1, f"{bits}-bit signed"
        return (1 << bits) - 1, f"{bits}-bit"
    if img.format == "PNG":
        return 65535, "16-bit"
    return (1 << 31) - 1, "32-bit signed"


def image_to_plane(img, rawmode: str = "") -> InputImage:
    """One float32 plane from a loaded pillow image, at the file's bit depth.

    Integer samples are divided by the largest value of the file's bit depth
    (255, 65535, ...): 8- and 16-bit images give [0, 1], signed ones [-1, 1].
    Float images are used as they are. Colour becomes luma (ITU-R BT.601
    weights, computed in floating point from the stored values); alpha is
    dropped. ``rawmode`` is the file's pixel layout (``_rawmode`` before
    ``load``), to say when pillow read 16-bit colour samples at 8 bits.
    """
    mode = img.mode
    fmt = img.format or "image"
    if mode == "F":
        return InputImage(np.asarray(img, dtype=np.float32), f"32-bit float grayscale {fmt}, values used as they are", True)
    if mode.startswith("I;16"):
        signed = mode.startswith("I;16S")
        full = 32767 if signed else 65535
        scaled = np.asarray(img).astype(np.float64) / full
        kind = "16-bit signed" if signed else "16-bit"
        return InputImage(scaled.astype(np.float32), f"{kind} grayscale {fmt}, scaled by 1/{full}", True)
    if mode == "I":
        high, kind = _integer_range(img)
        scaled = np.asarray(img).astype(np.float64) / high
        return InputImage(scaled.astype(np.float32), f"{kind} grayscale {fmt}, scaled by 1/{high}", True)
    # pillow decodes 16-bit colour (PNG RGB/RGBA/LA, 16-bit RGB TIFF) to 8 bits per channel
    reduced = ";16" in rawmode
    if mode in ("L", "LA", "La"):
        pixels = np.asarray(img.getchannel(0), dtype=np.float64)
        kind = "grayscale"
    elif mode == "1":
        pixels = np.asarray(img.convert("L"), dtype=np.float64)
        kind = "1-bit"
    else:
        try:
            rgb = img.convert("RGB")
        except (ValueError, OSError) as err:
            msg = f"its pixel mode {mode!r} cannot be converted to RGB by pillow ({err})"
            raise CommandError(msg) from None
        pixels = np.asarray(rgb, dtype=np.float64) @ LUMA
        kind = f"{mode} as luma"
    description = f"8-bit {kind} {fmt}, scaled by 1/255"
    if reduced:
        description += f" (the file has 16 bits per sample: pillow reads {rawmode.split(';')[0]} at 8)"
    return InputImage((pixels / 255).astype(np.float32), description, False)


def read_image(path: Path) -> InputImage:
    """An image file (any format pillow reads) as one float32 plane; see ``image_to_plane``."""
    Image = _require("PIL.Image", "edges", "cli")
    ImageOps = _require("PIL.ImageOps", "edges", "cli")
    if path.is_dir():
        msg = f"IMAGE {str(path)!r} is a folder, not an image file"
        raise CommandError(msg)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            frames = getattr(img, "n_frames", 1)
            rawmode = _rawmode(img)  # the decoder's view of the file, gone after load()
            img.load()
            # the orientation a viewer shows (EXIF tag of camera JPEGs), not the stored one;
            # in place, so that the file's format and TIFF tags stay readable
            ImageOps.exif_transpose(img, in_place=True)
            plane = image_to_plane(img, rawmode)
    except FileNotFoundError:
        msg = f"IMAGE {str(path)!r} does not exist"
        raise CommandError(msg) from None
    except PermissionError as err:
        msg = f"IMAGE {str(path)!r} cannot be read: {err.strerror}"
        raise CommandError(msg) from None
    except Image.DecompressionBombError as err:
        msg = (
            f"IMAGE {str(path)!r} is refused by pillow's decompression-bomb guard "
            f"(a possible denial-of-service file): {err}"
        )
        raise CommandError(msg) from None
    except CommandError as err:
        raise CommandError(f"IMAGE {str(path)!r}: {err}") from None
    except Exception as err:  # noqa: BLE001 - pillow's decoders raise many types for malformed files
        msg = f"IMAGE {str(path)!r} is not an image file pillow can read: {type(err).__name__}: {err}"
        raise CommandError(msg) from None
    notes = [str(w.message) for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    if frames > 1:
        notes.append(f"the file has {frames} frames; the first is used")
    if not np.isfinite(plane.pixels).all():
        bad = int(np.size(plane.pixels) - np.count_nonzero(np.isfinite(plane.pixels)))
        msg = f"IMAGE {str(path)!r} has {bad} NaN or infinite pixels; edges needs finite values"
        raise CommandError(msg)
    if notes:
        return InputImage(plane.pixels, plane.description + "; " + "; ".join(notes), plane.high_depth)
    return plane


def load_kernel_file(path: Path) -> np.ndarray:
    """A 2-D real kernel from a ``.npy`` file or a text file of whitespace-separated numbers (one row a line)."""
    option = f"--kernel-file {str(path)!r}"
    try:
        if path.suffix.lower() == ".npy":
            kernel = np.load(path, allow_pickle=False)
        else:
            with warnings.catch_warnings():
                # numpy's "input contained no data", with its source path: refused below in one line
                warnings.simplefilter("ignore", UserWarning)
                kernel = np.loadtxt(path, ndmin=2, dtype=np.float64)
            if kernel.size == 0:
                msg = f"{option} is empty: it holds no numbers"
                raise CommandError(msg)
    except FileNotFoundError:
        msg = f"{option} does not exist"
        raise CommandError(msg) from None
    except (OSError, ValueError, EOFError) as err:
        kind = ".npy array" if path.suffix.lower() == ".npy" else "text table of numbers"
        msg = f"{option} is not a {kind}: {err}"
        raise CommandError(msg) from None
    kernel = np.asarray(kernel)
    if kernel.dtype.kind not in "biuf":
        msg = f"{option} must hold real numbers; got dtype {kernel.dtype}"
        raise CommandError(msg)
    if kernel.ndim != 2 or kernel.size == 0:
        msg = f"{option} must hold a non-empty 2-D kernel; got shape {kernel.shape}"
        raise CommandError(msg)
    kernel = kernel.astype(np.float64)
    if not np.isfinite(kernel).all():
        msg = f"{option} has NaN or infinite values"
        raise CommandError(msg)
    return kernel


# Images are correlated in bands of rows of about this many pixels, each band
# with the kernel's height - 1 rows of its neighbours on both sides (the halo),
# so that the progress bar moves and every output row sees exactly the rows a
# single call would give it.
BAND_PIXELS = 1 << 20


def edge_map(
    backend: Backend,
    image: np.ndarray,
    kernels: tuple[np.ndarray, ...],
    *,
    band_rows: int | None = None,
    on_rows: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Edge strength of ``image`` (float32, the image's size) as a NumPy array.

    ``|corr2d(x, k)|`` for one kernel, ``sqrt(sum of corr2d(x, k)**2)`` for
    several, each in "same" mode with a symmetric boundary. Large images are
    computed in bands of ``band_rows`` rows (by default about ``BAND_PIXELS``
    pixels a band) with a halo of the kernel's height - 1 rows on each side:
    each output row's window lies inside its band or reflects at the image's
    own top or bottom, so the result equals one call on the whole image (bit
    for bit where ``method="auto"`` correlates directly, as it does for every
    named kernel; to rounding where it takes the FFT for a large kernel).
    ``on_rows(n)`` is called after each band with its number of rows.
    """
    height, width = image.shape
    halo = max(k.shape[0] for k in kernels) - 1
    if band_rows is None:
        band_rows = max(1, BAND_PIXELS // max(width, 1), 4 * halo)
    ks = [backend.asarray(k.astype(np.float32)) for k in kernels]
    out = np.empty((height, width), dtype=np.float32)
    for top in range(0, height, band_rows):
        bottom = min(height, top + band_rows)
        lo, hi = max(0, top - halo), min(height, bottom + halo)
        x = backend.asarray(np.ascontiguousarray(image[lo:hi]))
        responses = [xcorr.corr2d(x, k, mode="same", boundary="symm") for k in ks]
        if len(responses) == 1:
            strength = abs(responses[0])
        else:
            total = responses[0] * responses[0]
            for r in responses[1:]:
                total = total + r * r
            strength = total**0.5
        out[top:bottom] = backend.to_numpy(strength)[top - lo : bottom - lo]
        if on_rows is not None:
            on_rows(bottom - top)
    return out


@dataclass(frozen=True)
class Encoding:
    """How the edge strength becomes the output file's pixels."""

    pixels: np.ndarray  # uint8, uint16 or float32
    meaning: str  # what a pixel value means, for the summary line


def encode(strength: np.ndarray, depth: str) -> Encoding:
    """Scale the edge strength to the output's pixels: 8/16 bits by its peak, float as computed."""
    peak = float(strength.max()) if strength.size else 0.0
    if depth == "float":
        return Encoding(strength, f"float32 edge strength as computed (peak {peak:.6g})")
    full, dtype = (255, np.uint8) if depth == "8" else (65535, np.uint16)
    if peak > 0:
        pixels = np.round(strength * np.float32(full / peak)).astype(dtype)
        meaning = f"0..{full} = edge strength 0..{peak:.6g} (strength = value * {peak / full:.6g})"
    else:
        pixels = np.zeros(strength.shape, dtype=dtype)
        meaning = "all 0: the image has no edges (peak edge strength 0)"
    return Encoding(pixels, f"{depth}-bit, {meaning}")


JPEG_MAX_SIDE = 65500  # libjpeg's largest width or height


def output_depth(requested: str | None, fmt: str, image: InputImage) -> str:
    """The output's sample type: as requested, or 16 bits for a deeper-than-8-bit input where the format allows."""
    if requested is None:
        return "16" if image.high_depth and fmt != "JPEG" else "8"
    if fmt == "JPEG" and requested != "8":
        msg = f"--depth {requested}: JPEG files hold 8-bit samples only; write .png or .tif"
        raise CommandError(msg)
    if requested == "float" and fmt != "TIFF":
        msg = "--depth float: only TIFF holds float samples; write .tif, or choose --depth 8 or 16"
        raise CommandError(msg)
    return requested


def command_edges(args) -> int:
    Image = _require("PIL.Image", "edges", "cli")
    backend = load_backend(args.backend)
    check_output_path(args.output, "-o/--output", tuple(IMAGE_FORMATS))
    fmt = IMAGE_FORMATS[args.output.suffix.lower()]
    if args.kernel_file is not None:
        kernels: tuple[np.ndarray, ...] = (load_kernel_file(args.kernel_file),)
        kernel_name = f"{args.kernel_file.name} ({kernels[0].shape[0]}x{kernels[0].shape[1]})"
    else:
        name = args.kernel or "sobel"
        kernels, kernel_name = KERNELS[name], repr(name)
    if args.depth is not None:  # an impossible combination fails before the work
        output_depth(args.depth, fmt, InputImage(np.zeros((0, 0), np.float32), "", False))

    def save(file: IO[bytes]) -> None:
        picture = Image.fromarray(encoded.pixels)  # uint8: "L", uint16: "I;16", float32: "F"
        options = {"quality": 95} if fmt == "JPEG" else {}
        picture.save(file, format=fmt, **options)

    started = time.perf_counter()
    image = read_image(args.image)
    depth = output_depth(args.depth, fmt, image)
    h, w = image.pixels.shape
    if fmt == "JPEG" and max(h, w) > JPEG_MAX_SIDE:
        msg = f"-o/--output: JPEG holds at most {JPEG_MAX_SIDE} pixels a side; the image is {w}x{h}: write .png or .tif"
        raise CommandError(msg)
    if not args.quiet:
        print(f"read {args.image}: {w}x{h} pixels, {image.description}", file=sys.stderr)
        print(f"correlating with the {kernel_name} kernel on {backend.name} ...", file=sys.stderr, flush=True)
    # one bar for the rest of the run: the rows as they are correlated, then the write
    with progress(h, unit="row", desc="correlating", quiet=args.quiet) as bar:
        strength = edge_map(backend, image.pixels, kernels, on_rows=bar.update)
        if not np.isfinite(strength).all():
            msg = "the edge strength overflows float32: scale the image or the kernel down"
            raise CommandError(msg)
        encoded = encode(strength, depth)
        # redrawn now only once the bar may show: a short run prints no bar at all
        bar.set_description(f"writing {fmt}", refresh=not bar.disable and bar.format_dict["elapsed"] >= bar.delay)
        write_atomically(args.output, save, "-o/--output")
    elapsed = time.perf_counter() - started
    print(f"wrote {args.output} ({w}x{h} {fmt}, {encoded.meaning}) in {elapsed:.2f} s")
    return 0


# -- the parser ---------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text}")
    return value


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "2-D cross-correlation, convolution and a trainable Conv2D layer on every "
            f"array-API library. Start with: {prog} demo"
        ),
        epilog="Errors a user can fix are one line on stderr, with exit status 2.",
    )
    parser.add_argument("--version", action="version", version=f"xcorr {xcorr.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    backend_help = (
        f"array library to run on: {', '.join(_adapter.known_names())}, or NAME_gpu for a "
        "library's GPU device (torch_cuda too) (default numpy)"
    )
    quiet_help = "no progress bar (it shows on a terminal only, for runs longer than a moment)"

    demo = commands.add_parser(
        "demo",
        help="reproduce the seed notebook (corr2d, edge detection, learning a kernel, receptive fields)",
        description=(
            'Reproduce the d2l notebook "2-D convolutional layer" in order: corr2d of the 3x3/2x2 '
            "example, the 6x8 edge image and its edge map, learning the [[1, -1]] kernel back by "
            "gradient descent, and the receptive field of a small stack of layers."
        ),
    )
    demo.add_argument("--backend", default="numpy", metavar="NAME", help=backend_help)
    demo.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw the results to a PNG (needs matplotlib: xcorr[plot])",
    )
    demo.add_argument(
        "--steps",
        type=_positive_int,
        default=50,
        help="gradient-descent steps (default 50); the loss is printed every 10 steps, "
        "or every steps/10 for longer runs",
    )
    demo.add_argument("--lr", type=_positive_float, default=0.01, help="learning rate (default 0.01)")
    demo.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    demo.set_defaults(run=command_demo)

    edges = commands.add_parser(
        "edges",
        help="edge detection on an image file (PNG, JPEG, TIFF; 8-bit, 16-bit or float)",
        description=(
            "Read IMAGE at its bit depth as one grayscale plane (integer samples divided by the "
            "largest value of their bit depth: 8- and 16-bit images give 0..1; float images as "
            "they are; colour as ITU-R BT.601 luma), correlate it with an edge kernel ('same' "
            "mode, symmetric boundary), and write the edge strength (|response|, or the gradient "
            "magnitude for a kernel pair) to OUT: 8 or 16 bits scaled so that the image's peak "
            "strength is the format's largest value (the scale is printed), or float32 as "
            "computed (TIFF). The output is written to a temporary file and renamed into place, "
            "so a failed write leaves an existing OUT unchanged. Needs pillow: xcorr[cli]."
        ),
    )
    edges.add_argument("image", type=Path, metavar="IMAGE", help="input image file (any format pillow reads)")
    edges.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT",
        help="output file: .png, .jpg/.jpeg or .tif/.tiff",
    )
    which = edges.add_mutually_exclusive_group()
    which.add_argument(
        "--kernel",
        choices=tuple(KERNELS),
        # no default here: argparse would not see "--kernel sobel --kernel-file F" as a conflict
        # (command_edges takes sobel when neither option is given)
        metavar="NAME",
        help="named kernel: " + "; ".join(f"{name}: {text}" for name, text in KERNEL_HELP.items()),
    )
    which.add_argument(
        "--kernel-file",
        type=Path,
        metavar="PATH",
        help="kernel from a .npy file or a text file of whitespace-separated numbers, one row a line "
        "(the edge strength is |response|)",
    )
    edges.add_argument(
        "--depth",
        choices=("8", "16", "float"),
        help="output samples: 8 or 16 bits (scaled by the peak) or float (TIFF only, unscaled); "
        "default 16 for an input of more than 8 bits unless OUT is JPEG, else 8",
    )
    edges.add_argument("--backend", default="numpy", metavar="NAME", help=backend_help)
    edges.add_argument("-q", "--quiet", action="store_true", help=quiet_help + "; no log on stderr")
    edges.set_defaults(run=command_edges)
    return parser


def main(argv: list[str] | None = None, *, prog: str = PROG) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Usage errors exit through argparse with status 2; the errors a user can
    fix are one line on stderr and return 2; Ctrl-C returns 130.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CommandError as err:
        print(f"{prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130


def run(prog: str = "xcorr") -> None:
    """The process entry point (the ``xcorr`` console script and ``python -m xcorr``).

    A write past the file-size limit (``ulimit -f``) then fails with an error
    that ``write_atomically`` reports and cleans up after, instead of SIGXFSZ
    killing the process midway.
    """
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    raise SystemExit(main(prog=prog))
