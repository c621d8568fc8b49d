"""``python -m xcorr``: the seed notebook as a command, and edge detection on image files.

Commands
--------
demo   the d2l "2-D convolutional layer" notebook, in order, with its numbers,
       on any backend (``--backend``), optionally drawn (``--plot FILE.png``)
edges  edge detection on a PNG/JPEG file, written as a PNG

Frameworks, matplotlib and pillow are imported only by the command that needs
them, with an error naming the extra to install when they are missing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["main"]

# -- backends -------------------------------------------------------------------

# name -> (module to import, pip extra that provides it)
BACKENDS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", ""),
    "array_api_strict": ("array_api_strict", "test"),
    "torch": ("torch", "torch"),
    "jax": ("jax.numpy", "jax"),
    "dask": ("dask.array", "dask"),
    "cupy": ("cupy", ""),
    "torch_cuda": ("torch", "torch"),
    "jax_gpu": ("jax", "jax"),
}
ALIASES = {"strict": "array_api_strict", "array-api-strict": "array_api_strict"}


class CommandError(Exception):
    """A problem the user can fix (missing extra, unreadable file): printed without a traceback."""


@dataclass(frozen=True)
class Backend:
    """How the CLI moves NumPy data onto one array library and back."""

    name: str
    module: object

    def asarray(self, a: np.ndarray):
        lib = self.module
        if self.name == "numpy":
            return a
        if self.name in ("torch", "torch_cuda"):
            return lib.asarray(a.copy(), device="cuda" if self.name == "torch_cuda" else "cpu")
        if self.name == "jax_gpu":
            return lib.device_put(a, lib.devices("gpu")[0])
        if self.name == "dask":
            return lib.from_array(a)
        return lib.asarray(a)

    def to_numpy(self, y) -> np.ndarray:
        if self.name == "dask":
            y = y.compute()
        if self.name in ("torch", "torch_cuda"):
            return y.detach().cpu().numpy()
        if self.name == "cupy":
            return y.get()
        return np.asarray(y)


def load_backend(name: str) -> Backend:
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        msg = f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}"
        raise CommandError(msg)
    module, extra = BACKENDS[name]
    try:
        lib = importlib.import_module(module)
    except ImportError as err:
        hint = f": pip install 'xcorr[{extra}]'" if extra else ""
        msg = f"backend {name!r} needs {module.split('.')[0]}, which is not installed ({err}){hint}"
        raise CommandError(msg) from None
    if name == "torch_cuda" and not lib.cuda.is_available():
        msg = "backend 'torch_cuda' needs a CUDA device, and torch sees none"
        raise CommandError(msg)
    if name == "jax_gpu":
        try:
            lib.devices("gpu")
        except RuntimeError:
            msg = "backend 'jax_gpu' needs a GPU device, and jax sees none"
            raise CommandError(msg) from None
    return Backend(name, lib)


def check_png_path(path: Path, option: str) -> None:
    """Fail before any work if ``path`` cannot become a PNG file."""
    if path.suffix.lower() != ".png":
        msg = f"{option} must name a .png file; got {str(path)!r}"
        raise CommandError(msg)
    if not path.parent.is_dir():
        msg = f"{option}: the folder {str(path.parent)!r} does not exist"
        raise CommandError(msg)


def _require(module: str, purpose: str):
    """Import an optional dependency of the ``plot`` extra, or explain how to install it."""
    package = {"PIL": "pillow"}.get(module.split(".")[0], module.split(".")[0])
    try:
        return importlib.import_module(module)
    except ImportError:
        msg = f"{purpose} needs {package}, which is not installed: pip install 'xcorr[plot]'"
        raise CommandError(msg) from None


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
    import xcorr

    family = {"torch_cuda": "torch", "jax_gpu": "jax"}.get(backend.name, backend.name)
    layer = xcorr.Conv2D(kernel_size, backend=family, **options)
    params = {
        name: backend.asarray(np.asarray(value, dtype=np.float32))
        for name, value in (("weight", weight), ("bias", bias))
        if value is not None
    }
    if family == "jax":
        layer = layer.replace(**params)
        if backend.name == "jax_gpu":
            layer = backend.module.device_put(layer, backend.module.devices("gpu")[0])
    elif family == "torch":
        layer = layer.to("cuda" if backend.name == "torch_cuda" else "cpu")
        with backend.module.no_grad():
            for name, value in params.items():
                getattr(layer, name).copy_(value)
    else:
        for name, value in params.items():
            setattr(layer, name, value)
    return layer


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


def run_demo(backend: Backend, *, steps: int = 50, lr: float = 0.01) -> DemoResult:
    """Print the notebook's steps and numbers; return them for plotting and tests."""
    import xcorr

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
    # the notebook's log every 10 steps; about 10 progress lines for longer runs
    log_every = 10 if steps <= 100 else steps // 10
    layer, losses = xcorr.fit(layer, X, Y, lr=lr, steps=steps, loss="sse", log_every=log_every)
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


def _ascii_mask(mask: np.ndarray) -> str:
    return "\n".join(" ".join("#" if v else "." for v in row) for row in mask)


def plot_demo(result: DemoResult, path: Path) -> None:
    """Draw the input, the kernel, the feature map and the learning curve (and the field) to a PNG."""
    _require("matplotlib", "--plot")
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

    fig.savefig(path, dpi=100)


def _rectangle(x, y, w, h):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, fill=False, edgecolor="red", linewidth=2)


def command_demo(args) -> int:
    backend = load_backend(args.backend)
    if args.plot is not None:  # fail before the work, not after
        check_png_path(args.plot, "--plot")
        _require("matplotlib", "--plot")
    result = run_demo(backend, steps=args.steps, lr=args.lr)
    if args.plot is not None:
        plot_demo(result, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


# -- edges ------------------------------------------------------------------------

KERNELS: dict[str, list[np.ndarray]] = {
    # the notebook's kernel: vertical edges only (a change from one column to the next)
    "seed": [np.array([[1.0, -1.0]])],
    # gradient magnitude from horizontal and vertical Sobel derivatives
    "sobel": [
        np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]),
        np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]),
    ],
    "laplace": [np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])],
}


def read_gray(path: Path) -> np.ndarray:
    """A PNG/JPEG/... file as a float32 grayscale image in [0, 1]."""
    Image = _require("PIL.Image", "edges")
    try:
        with Image.open(path) as img:
            img.load()
            gray = img.convert("L")
    except FileNotFoundError:
        msg = f"IMAGE {str(path)!r} does not exist"
        raise CommandError(msg) from None
    except (OSError, Image.UnidentifiedImageError, ValueError) as err:
        msg = f"IMAGE {str(path)!r} is not an image file pillow can read: {err}"
        raise CommandError(msg) from None
    return np.asarray(gray, dtype=np.float32) / np.float32(255)


def edge_map(backend: Backend, image: np.ndarray, kernel: str):
    """Edge strength of ``image`` as a backend array, the same size as the image."""
    import xcorr

    x = backend.asarray(image)
    responses = [
        xcorr.corr2d(x, backend.asarray(k.astype(np.float32)), mode="same", boundary="symm")
        for k in KERNELS[kernel]
    ]
    if len(responses) == 1:
        return abs(responses[0])
    total = responses[0] * responses[0]
    for r in responses[1:]:
        total = total + r * r
    return total**0.5


def command_edges(args) -> int:
    Image = _require("PIL.Image", "edges")
    backend = load_backend(args.backend)
    check_png_path(args.output, "-o/--output")
    log = sys.stderr
    started = time.perf_counter()
    image = read_gray(args.image)
    h, w = image.shape
    print(f"read {args.image}: {w}x{h} pixels, grayscale", file=log)
    print(f"correlating with the {args.kernel!r} kernel on {backend.name} ...", file=log, flush=True)
    edges = edge_map(backend, image, args.kernel)
    if backend.name == "dask":
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=1.0, out=log):
            result = backend.to_numpy(edges)
    else:
        result = backend.to_numpy(edges)
    peak = float(result.max())
    scaled = result / peak if peak > 0 else result
    Image.fromarray(np.round(scaled * 255).astype(np.uint8)).save(args.output)  # 2-D uint8: mode "L"
    elapsed = time.perf_counter() - started
    print(
        f"wrote {args.output} ({w}x{h}, edge strength scaled to 0..255; peak {peak:.3g}) "
        f"in {elapsed:.2f} s"
    )
    return 0


# -- the parser ---------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0; got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xcorr",
        description=(
            "2-D cross-correlation, convolution and a trainable Conv2D layer on every "
            "array-API library. Start with: python -m xcorr demo"
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    backend_help = f"array library to run on: {', '.join(BACKENDS)} (default numpy)"

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
    demo.set_defaults(run=command_demo)

    edges = commands.add_parser(
        "edges",
        help="edge detection on an image file (PNG, JPEG, ...), written as a PNG",
        description=(
            "Read IMAGE as grayscale, correlate it with an edge kernel (mode 'same', symmetric "
            "boundary) and write the edge strength, scaled to 0..255, as a PNG. Needs pillow: xcorr[plot]."
        ),
    )
    edges.add_argument("image", type=Path, metavar="IMAGE", help="input image file")
    edges.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.png", help="output PNG file")
    edges.add_argument(
        "--kernel",
        choices=tuple(KERNELS),
        default="sobel",
        help="seed: the notebook's [[1, -1]] (vertical edges); sobel: gradient magnitude (default); laplace",
    )
    edges.add_argument("--backend", default="numpy", metavar="NAME", help=backend_help)
    edges.set_defaults(run=command_edges)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m xcorr``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CommandError as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
