"""``xcorr correlate``: N-d array files (``.npy``, ``.csv``) correlated with a 1-D, 2-D or 3-D kernel.

The kernel's number of axes picks the function (``corr1d``, ``corr2d`` or
``corr3d``; ``conv*`` with ``--convolve``); the input's further leading axes
are batch axes, as the functions take them. Arrays are read as they are stored
(``.npy`` keeps its dtype; CSV is read as float64), moved to the backend's
array type, correlated there and moved back, and written as ``.npy`` or CSV by
the output's suffix (``-o -``: CSV on stdout).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from pathlib import Path
from typing import IO

import numpy as np

import xcorr

from ._cli_base import CommandError, load_backend, reading
from ._images import check_output_path, write_atomically

ARRAY_SUFFIXES = (".npy", ".csv")

# kernel ndim -> (correlation, convolution)
FUNCTIONS = {
    1: (xcorr.corr1d, xcorr.conv1d),
    2: (xcorr.corr2d, xcorr.conv2d),
    3: (xcorr.corr3d, xcorr.conv3d),
}


# -- reading --------------------------------------------------------------------------


def read_csv(source: str | IO[str], what: str) -> np.ndarray:
    """A CSV table of numbers: one column or one row is a 1-D signal, anything else a 2-D array."""
    csv = "a CSV table of numbers (comma-separated, one row a line)"
    with reading(what, csv, (OSError, ValueError)), warnings.catch_warnings():
        # numpy's "input contained no data", with its source path: refused below in one line
        warnings.simplefilter("ignore", UserWarning)
        table = np.loadtxt(source, delimiter=",", ndmin=2, dtype=np.float64)
    if table.size == 0:
        msg = f"{what} is empty: it holds no numbers"
        raise CommandError(msg)
    return table.ravel() if 1 in table.shape else table


def read_array(path: Path, what: str) -> np.ndarray:
    """A real array from a ``.npy`` file (any ndim, its dtype) or a ``.csv`` file (1-D or 2-D, float64).

    ``what`` names the argument in messages, e.g. ``"INPUT 'x.npy'"``.
    """
    if str(path) == "-":
        return read_csv(sys.stdin, what)
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        msg = f"{what} must be a .npy or .csv file; got the suffix {suffix or '(none)'!r}"
        raise CommandError(msg)
    if path.is_dir():
        msg = f"{what} is a folder, not a file"
        raise CommandError(msg)
    if suffix == ".csv":
        array = read_csv(str(path), what)
    else:
        with reading(what, "a .npy array", (OSError, ValueError, EOFError)):
            array = np.load(path, allow_pickle=False)
        if not isinstance(array, np.ndarray):  # an .npz archive saved under a .npy name
            msg = f"{what} is not a .npy array (it holds several arrays: an .npz archive)"
            raise CommandError(msg)
    if array.dtype.kind not in "iuf":
        msg = f"{what} must hold real numbers (integer or float); got dtype {array.dtype}"
        raise CommandError(msg)
    if array.size == 0:
        msg = f"{what} is empty: shape {array.shape}"
        raise CommandError(msg)
    return array


def parse_inline_kernel(text: str) -> np.ndarray | None:
    """``"1,-1"`` as a 1-D float64 kernel, or None when ``text`` is not a comma-separated list of numbers."""
    try:
        taps = [float(part) for part in text.split(",")]
    except ValueError:
        return None
    return np.array(taps, dtype=np.float64)


def inline_dtype(kernel: np.ndarray, data: np.dtype) -> np.ndarray:
    """An inline kernel in the input's float dtype (float32 data stays float32), or int64 for
    integer data when every tap is a whole number (the correlation is then exact)."""
    if data.kind == "f":
        return kernel.astype(data)
    if (kernel == np.round(kernel)).all() and np.abs(kernel).max() < 2**53:
        return kernel.astype(np.int64)
    return kernel


def read_kernel(text: str) -> tuple[np.ndarray, str, bool]:
    """The ``--kernel`` argument, its name for messages, and whether it was inline.

    A ``.npy``/``.csv`` file, or inline comma-separated numbers (1-D).
    """
    if Path(text).suffix.lower() not in ARRAY_SUFFIXES:
        inline = parse_inline_kernel(text)
        if inline is None:
            msg = f"--kernel {text!r} is neither a .npy or .csv file nor comma-separated numbers such as 1,-1"
            raise CommandError(msg)
        if not np.isfinite(inline).all():
            msg = f"--kernel {text!r} has NaN or infinite values"
            raise CommandError(msg)
        return inline, f"[{text}]", True
    what = f"--kernel {text!r}"
    kernel = read_array(Path(text), what)
    if kernel.ndim not in FUNCTIONS:
        msg = f"{what} must be a 1-D, 2-D or 3-D kernel; got shape {kernel.shape}"
        raise CommandError(msg)
    return kernel, f"{Path(text).name} {kernel.shape}", False


# -- writing --------------------------------------------------------------------------


def csv_text(y: np.ndarray) -> str:
    """``y`` (1-D: one value a line; 2-D: one row a line) as CSV that reads back to the same numbers."""
    fmt = "%d" if y.dtype.kind in "iu" else "%.9g" if y.dtype == np.float32 else "%.17g"
    buffer = io.StringIO()
    np.savetxt(buffer, y, fmt=fmt, delimiter=",")
    return buffer.getvalue()


def check_output_ndim(output: Path, ndim: int) -> None:
    """Fail before the work if a result of ``ndim`` axes cannot be written to ``output``."""
    if ndim > 2 and (str(output) == "-" or output.suffix.lower() == ".csv"):
        msg = f"-o/--output: CSV holds 1-D or 2-D arrays; the result is {ndim}-D: write a .npy file"
        raise CommandError(msg)


def write_result(output: Path, y: np.ndarray) -> None:
    if str(output) == "-":
        sys.stdout.write(csv_text(y))
        sys.stdout.flush()
        return
    if output.suffix.lower() == ".csv":
        data = csv_text(y).encode()

        def write_csv(file: IO[bytes]) -> None:
            file.write(data)

        write_atomically(output, write_csv, "-o/--output")
    else:
        write_atomically(output, lambda file: np.save(file, y, allow_pickle=False), "-o/--output")


# -- the command ------------------------------------------------------------------------


def command_correlate(args) -> int:
    backend = load_backend(args.backend)
    if str(args.output) != "-":
        check_output_path(args.output, "-o/--output", ARRAY_SUFFIXES)
    started = time.perf_counter()
    kernel, kernel_name, inline = read_kernel(args.kernel)
    what = "INPUT (stdin)" if str(args.input) == "-" else f"INPUT {str(args.input)!r}"
    x = read_array(args.input, what)
    if inline:
        kernel = inline_dtype(kernel, x.dtype)
    if kernel.ndim > x.ndim:
        msg = (
            f"the kernel {kernel_name} is {kernel.ndim}-D but {what} is {x.ndim}-D (shape {x.shape}): "
            "the kernel may not have more axes than the input"
        )
        raise CommandError(msg)
    check_output_ndim(args.output, x.ndim)
    correlate, convolve = FUNCTIONS[kernel.ndim]
    function = convolve if args.convolve else correlate
    options = {
        "mode": args.mode,
        "boundary": args.boundary,
        "fillvalue": args.fillvalue,
        "stride": args.stride,
        "dilation": args.dilation,
        "method": args.method,
    }
    log = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    log(f"read {'stdin' if str(args.input) == '-' else args.input}: shape {x.shape}, {x.dtype}")
    log(f"{function.__name__} with the kernel {kernel_name} ({args.mode} mode) on {backend.name} ...")
    try:
        y = backend.to_numpy(function(backend.asarray(x), backend.asarray(kernel), **options))
    except ValueError as err:
        msg = f"{function.__name__} of {what} {x.shape} with the kernel {kernel_name}: {err}"
        raise CommandError(msg) from None
    y = np.asarray(y)
    write_result(args.output, y)
    elapsed = time.perf_counter() - started
    if str(args.output) != "-":
        print(f"wrote {args.output} (shape {y.shape}, {y.dtype}) in {elapsed:.2f} s")
    else:
        log(f"wrote shape {y.shape}, {y.dtype} to stdout in {elapsed:.2f} s")
    return 0


# -- the parser ---------------------------------------------------------------------


def _ints(text: str) -> int | tuple[int, ...]:
    """``"2"`` as 2, ``"2,1"`` as (2, 1): one value for every axis, or one per axis."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number or comma-separated ones; got {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {text}")
    return values[0] if len(values) == 1 else values


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number; got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite; got {text}")
    return value


# the library's names, then their aliases (xcorr.corr2d's boundary)
BOUNDARIES = (
    "fill", "wrap", "symm", "reflect", "edge",
    "pad", "constant", "zeros", "circular", "grid-wrap", "symmetric", "grid-mirror", "mirror", "replicate", "nearest",
)  # fmt: skip


def add_parser(commands, backend_help: str) -> None:
    correlate = commands.add_parser(
        "correlate",
        help="correlate an N-d array (.npy, .csv) with a 1-D, 2-D or 3-D kernel",
        description=(
            "Cross-correlate INPUT with KERNEL (convolve with --convolve) and write the result to OUT. "
            "The kernel's number of axes picks corr1d, corr2d or corr3d; further leading axes of INPUT "
            "are batch axes. INPUT and KERNEL are .npy files (their dtype is kept: integers correlate "
            "exactly) or CSV files of numbers (float64; a table of one column or one row is a 1-D "
            "signal, anything else 2-D); KERNEL may also be numbers inline, in INPUT's dtype: --kernel 1,-1 (write "
            "--kernel=-1,1 when the first is negative). OUT is .npy or .csv by its suffix, or - for "
            "CSV on stdout. The output is written to a temporary file and renamed into place."
        ),
    )
    correlate.add_argument(
        "input", type=Path, metavar="INPUT", help="input array: .npy or .csv file, or - for CSV on stdin"
    )
    correlate.add_argument(
        "--kernel",
        "-k",
        required=True,
        metavar="KERNEL",
        help="kernel: a .npy or .csv file (1-D, 2-D or 3-D), or comma-separated numbers (1-D)",
    )
    correlate.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT",
        help="output file: .npy or .csv, or - for CSV on stdout",
    )
    correlate.add_argument("--convolve", action="store_true", help="convolve (flip the kernel) instead of correlating")
    correlate.add_argument(
        "--mode",
        choices=("valid", "same", "full"),
        default="valid",
        help="output size, as in scipy.signal.correlate (default valid, as the library's functions)",
    )
    correlate.add_argument(
        "--boundary",
        choices=BOUNDARIES,
        default="fill",
        metavar="NAME",
        help="how INPUT is extended in same and full modes: fill (with --fillvalue; default), wrap, symm "
        "(mirror with the edge repeated), reflect (numpy.pad's: without it) or edge (repeat it), or "
        "an alias as corr2d takes it",
    )
    correlate.add_argument(
        "--fillvalue",
        type=_finite,
        default=0.0,
        metavar="V",
        help="value beyond INPUT's edges for --boundary fill (default 0)",
    )
    correlate.add_argument(
        "--stride",
        type=_ints,
        default=1,
        metavar="S",
        help="output step: one for every axis, or one per axis as 2,1 (default 1)",
    )
    correlate.add_argument(
        "--dilation",
        type=_ints,
        default=1,
        metavar="D",
        help="kernel dilation: one for every axis, or one per axis (default 1)",
    )
    correlate.add_argument(
        "--method", choices=("auto", "direct", "fft", "native"), default="auto", help="algorithm (default auto)"
    )
    correlate.add_argument("--backend", default="numpy", metavar="NAME", help=backend_help)
    correlate.add_argument("-q", "--quiet", action="store_true", help="no log on stderr")
    correlate.set_defaults(run=command_correlate)
