"""``xcorr`` / ``python -m xcorr``: the seed notebook as a command, and edge detection on image files.

Commands
--------
demo   the d2l "2-D convolutional layer" notebook, in order, with its numbers,
       on any backend (``--backend``), optionally drawn (``--plot FILE.png``)
edges  edge detection on an image file (PNG, JPEG, TIFF; 8-bit, 16-bit or
       float), written as PNG, JPEG or TIFF
correlate  an N-d array (.npy, .csv) correlated with a 1-D, 2-D or 3-D kernel
       (``xcorr._cli_arrays``), written as .npy or CSV

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
import math
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

import xcorr

from . import _registry
from ._cli_arrays import add_parser as add_correlate_parser
from ._cli_base import Backend, CommandError, _require, load_backend, progress
from ._demo import command_demo
from ._images import (
    IMAGE_FORMATS,
    JPEG_MAX_SIDE,
    InputImage,
    check_output_path,
    encode,
    load_kernel_file,
    output_depth,
    read_image,
    write_atomically,
)

__all__ = ["main"]

PROG = "python -m xcorr"


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
        f"array library to run on: {', '.join(_registry.known_names())}, or NAME_gpu for a "
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
    add_correlate_parser(commands, backend_help)
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
