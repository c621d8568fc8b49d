"""``xcorr demo``: the seed notebook's steps on one backend, its printout and its figure."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import xcorr

from ._cli_base import Backend, _require, _show, load_backend, progress
from ._images import check_output_path, write_atomically

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
