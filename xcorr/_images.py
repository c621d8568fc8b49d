"""Image files for ``xcorr edges``: reading (every Pillow mode as a gray plane), encoding, atomic writes."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from ._cli_base import CommandError, _require, reading

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


# -- images ---------------------------------------------------------------------


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
    what = f"IMAGE {str(path)!r}"
    with reading(what, "an image file pillow can read", (Exception,)):  # pillow's decoders raise many types
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
        except Image.DecompressionBombError as err:
            msg = f"{what} is refused by pillow's decompression-bomb guard (a possible denial-of-service file): {err}"
            raise CommandError(msg) from None
        except CommandError as err:
            raise CommandError(f"{what}: {err}") from None
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
    npy = path.suffix.lower() == ".npy"
    with reading(option, "a .npy array" if npy else "a text table of numbers", (OSError, ValueError, EOFError)):
        if npy:
            kernel = np.load(path, allow_pickle=False)
        else:
            with warnings.catch_warnings():
                # numpy's "input contained no data", with its source path: refused below in one line
                warnings.simplefilter("ignore", UserWarning)
                kernel = np.loadtxt(path, ndmin=2, dtype=np.float64)
            if kernel.size == 0:
                msg = f"{option} is empty: it holds no numbers"
                raise CommandError(msg)
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
