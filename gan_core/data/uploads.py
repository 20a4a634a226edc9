"""Validation of user uploads (datasets as .npz arrays or .zip archives of PNG/JPEG images, and images to apply a
trained generator to); read-only, never writes to disk.

Every problem a user can cause raises DataError with one sentence naming the file, member, field or value.
"""

from __future__ import annotations

import io
import os
import re
import stat
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import numpy as np
from PIL import Image

from gan_core.data.imageset import ImageSet, shown
from gan_core.errors import DataError

MB = 1024 * 1024
MAX_FILE_BYTES = 200 * MB
MAX_IMAGES = 100_000
MIN_IMAGES = 16
MAX_ZIP_MEMBERS = 100_000
MAX_ZIP_UNCOMPRESSED_BYTES = 1024 * MB
MAX_ZIP_RATIO = 100  # per member, uncompressed/compressed
ZIP_RATIO_MIN_BYTES = 1 * MB  # ratio is only checked for members larger than this
MAX_DECODED_BYTES = 2048 * MB  # N*H*W*3 of the decoded zip images
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_SIDE = 256
MIN_SIDE = 8
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
JUNK_NAMES = ("__MACOSX", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class Limits:
    """How few images, and how small, an upload may hold."""

    min_images: int
    min_side: int


DATASET = Limits(MIN_IMAGES, MIN_SIDE)  # a training set
APPLY = Limits(1, 4)  # images to apply a trained generator to: one is enough, and a 4x super-resolution of 28x28 takes 7x7

_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N")
_CHUNK = 1 * MB

Source = Union[str, os.PathLike, BinaryIO]


# ---------------------------------------------------------------- opening


@contextmanager
def _opened(src: Source, name: str | None, kind: str) -> Iterator[tuple[BinaryIO, str, str]]:
    """Yield (seekable binary file at offset 0, display name, source) for a path or a file-like upload."""
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        label = shown(name or str(path))
        try:  # is_file/stat raise OSError too, e.g. for a name too long for the system
            if not path.is_file():
                missing = not path.exists()
                raise DataError(f"Dataset file '{label}' does not exist." if missing else f"'{label}' is not a file.")
            _check_file_size(path.stat().st_size, label, kind)
            fh = open(path, "rb")
        except OSError as exc:
            raise DataError(f"Could not read '{label}': {exc.strerror or exc}.") from exc
        with fh:
            yield fh, label, str(path)
        return
    label = shown(name or f"upload{kind}")
    fh = _seekable(src, label)
    fh.seek(0, io.SEEK_END)
    _check_file_size(fh.tell(), label, kind)
    fh.seek(0)
    yield fh, label, label


def _seekable(src: BinaryIO, label: str) -> BinaryIO:
    """Return src if it can seek, else an in-memory copy of at most MAX_FILE_BYTES + 1 bytes."""
    try:
        if src.seekable():
            return src
        return io.BytesIO(src.read(MAX_FILE_BYTES + 1))
    except (AttributeError, OSError, ValueError) as exc:
        raise DataError(f"Could not read '{label}': it is not a readable binary file.") from exc


def _check_file_size(size: int, label: str, kind: str) -> None:
    """Refuse empty files and files above MAX_FILE_BYTES."""
    if size == 0:
        raise DataError(f"'{label}' is not a valid {kind} file: it is empty (0 bytes).")
    if size > MAX_FILE_BYTES:
        raise DataError(f"'{label}' is {_human(size)}, larger than the {_human(MAX_FILE_BYTES)} upload limit.")


def _human(n: int) -> str:
    """A byte count as '12 MB', '3 KB' or '512 bytes'."""
    if n >= 1024 * MB:
        return f"{n / (1024 * MB):.3g} GB"
    if n >= MB:
        return f"{n / MB:.0f} MB"
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def _open_zip(fh: BinaryIO, label: str, kind: str) -> zipfile.ZipFile:
    """Open fh as a zip archive, refusing non-zips and archives with too many entries or bytes."""
    hint = "; save one with np.savez(path, x=images, y=labels)" if kind == ".npz" else ""
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"'{label}' is not a valid {kind} file{hint}.") from exc
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_MEMBERS:
        raise DataError(f"'{label}' has {len(infos)} entries, more than the {MAX_ZIP_MEMBERS} limit.")
    total = sum(i.file_size for i in infos)
    if total > MAX_ZIP_UNCOMPRESSED_BYTES:
        raise DataError(
            f"'{label}' would unpack to {_human(total)}, more than the {_human(MAX_ZIP_UNCOMPRESSED_BYTES)} limit."
        )
    return zf


# ---------------------------------------------------------------- .npz


def load_npz(path_or_file: Source, name: str | None = None, limits: Limits = DATASET) -> ImageSet:
    """Validate and load an .npz with images 'x' (N,H,W[,1|3]) and optional integer labels 'y' (1 class = none)."""
    with _opened(path_or_file, name, ".npz") as (fh, label, source):
        if fh.read(2) != b"PK":
            raise DataError(f"'{label}' is not a valid .npz file; save one with np.savez(path, x=images, y=labels).")
        fh.seek(0)
        with _open_zip(fh, label, ".npz") as zf:
            keys = {n[:-4]: n for n in zf.namelist() if n.endswith(".npy")}
            if "x" not in keys:
                found = shown(", ".join(sorted(keys))) or "none"
                raise DataError(
                    f"'{label}' has no array named 'x' (found: {found}); save images with np.savez(path, x=images)."
                )
            _check_x_header(*_npy_header(zf, keys["x"], label), label, limits)
            if "y" in keys:
                _check_y_header(*_npy_header(zf, keys["y"], label), label)
        fh.seek(0)
        x, y = _np_load(fh, label, "y" in keys)
    images = _to_uint8(x[..., None] if x.ndim == 3 else x, label)
    if y is None:
        return ImageSet(images, None, (), source)
    labels, class_names = _remap_labels(y, images.shape[0], label)
    if len(class_names) < 2:  # one class carries no information; models refuse num_classes == 1
        return ImageSet(images, None, (), source)
    return ImageSet(images, labels, class_names, source)


def load_images(data: bytes, name: str, limits: Limits = APPLY) -> np.ndarray:
    """One PNG/JPEG image, or a batch as .npz ('x') or .zip, as uint8 (N, H, W, C), checked as dataset uploads are."""
    suffix = Path(name).suffix.lower()
    label = shown(name)
    if suffix in IMAGE_SUFFIXES:
        _check_file_size(len(data), label, suffix)
        pixels = _decode_image(data, label, label, None, label, limits)
        return (pixels[..., None] if pixels.ndim == 2 else pixels)[None]
    if suffix == ".npz":
        return load_npz(io.BytesIO(data), name, limits).images
    if suffix == ".zip":
        return load_zip(io.BytesIO(data), name, limits).images
    raise DataError(f"'{label}' is not a .png, .jpg, .jpeg, .npz or .zip file.")


def _npy_header(zf: zipfile.ZipFile, member: str, label: str) -> tuple[tuple[int, ...], np.dtype]:
    """Read (shape, dtype) from an .npy member's header without loading its data."""
    key = member[:-4]
    try:
        with zf.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = reader(fp)
    except Exception as exc:  # corrupt or hostile header
        raise DataError(f"'{label}' is not a valid .npz file: array '{key}' is unreadable.") from exc
    if dtype.hasobject:
        raise _pickled(label)
    return tuple(int(s) for s in shape), dtype


def _pickled(label: str) -> DataError:
    """The error for .npz files holding pickled objects."""
    return DataError(
        f"'{label}' contains pickled Python objects, which are refused for safety; save plain arrays with np.savez."
    )


def _check_x_header(shape: tuple[int, ...], dtype: np.dtype, label: str, limits: Limits) -> None:
    """Check the image array's shape, sizes and dtype before its data is loaded."""
    ok_shape = len(shape) == 3 or (len(shape) == 4 and shape[3] in (1, 3))
    if not ok_shape:
        raise DataError(
            f"'x' in '{label}' has shape {shape}; expected (N, H, W), (N, H, W, 1) or (N, H, W, 3)."
        )
    n, h, w = shape[:3]
    if not (limits.min_side <= h <= MAX_SIDE and limits.min_side <= w <= MAX_SIDE):
        raise DataError(
            f"Images in '{label}' are {h}x{w} pixels; height and width must be between {limits.min_side} and {MAX_SIDE}."
        )
    _check_count(n, label, limits)
    if dtype.kind not in "uif":
        raise DataError(
            f"'x' in '{label}' has dtype {dtype}; use uint8 (0..255) or float (0..1, -1..1 or 0..255) pixels."
        )


def _check_y_header(shape: tuple[int, ...], dtype: np.dtype, label: str) -> None:
    """Check the label array's rank and dtype before its data is loaded."""
    if len(shape) != 1:
        raise DataError(f"'y' in '{label}' has shape {shape}; expected a 1-D array of integer labels.")
    if dtype.kind not in "uif":
        raise DataError(f"'y' in '{label}' has dtype {dtype}; labels must be integers.")


def _check_count(n: int, label: str, limits: Limits) -> None:
    """Refuse fewer than limits.min_images or more than MAX_IMAGES images."""
    if n < limits.min_images:
        raise DataError(f"'{label}' holds {n} images; at least {limits.min_images} are needed.")
    if n > MAX_IMAGES:
        raise DataError(f"'{label}' holds {n} images, more than the {MAX_IMAGES} limit.")


def _np_load(fh: BinaryIO, label: str, with_y: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Load 'x' (and 'y') with np.load(allow_pickle=False), turning its errors into DataError."""
    try:
        with np.load(fh, allow_pickle=False) as data:
            return data["x"], (data["y"] if with_y else None)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _pickled(label) from exc
        raise DataError(f"'{label}' is not a valid .npz file: its arrays are corrupt or truncated.") from exc
    except Exception as exc:  # truncated/corrupt members, CRC errors, ...
        raise DataError(f"'{label}' is not a valid .npz file: its arrays are corrupt or truncated.") from exc


def _to_uint8(x: np.ndarray, label: str) -> np.ndarray:
    """Convert pixels to uint8 0..255, accepting uint8, ints in 0..255 and floats in [0,1], [-1,1] or [0,255]."""
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    lo, hi = (x.min(), x.max()) if x.size else (0, 0)
    if x.dtype.kind in "iu":
        if lo < 0 or hi > 255:
            raise DataError(
                f"Pixel values of 'x' in '{label}' range from {lo} to {hi}; integer pixels must lie in 0..255."
            )
        return x.astype(np.uint8)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise DataError(f"'x' in '{label}' contains NaN or infinite pixel values.")
    if lo >= 0 and hi <= 1:
        scaled = x * 255.0
    elif lo >= -1 and hi <= 1:
        scaled = (x + 1.0) * 127.5
    elif lo >= 0 and hi <= 255:
        scaled = x
    else:
        raise DataError(
            f"Pixel values of 'x' in '{label}' range from {float(lo):g} to {float(hi):g}; "
            "float pixels must lie in [0, 1], [-1, 1] or [0, 255]."
        )
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _remap_labels(y: np.ndarray, n: int, label: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map labels >= 0 to contiguous 0..K-1; class names are the original values as strings."""
    if y.shape[0] != n:
        raise DataError(f"'y' in '{label}' has {y.shape[0]} labels but 'x' has {n} images; they must match.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"'y' in '{label}' has dtype {y.dtype} with non-whole values; labels must be integers.")
    if y.size and y.min() < 0:
        raise DataError(f"'y' in '{label}' contains the negative label {int(y.min())}; labels must be 0 or greater.")
    values = y.astype(np.int64)
    classes, labels = np.unique(values, return_inverse=True)
    return labels.astype(np.int64).reshape(n), tuple(str(int(c)) for c in classes)


# ---------------------------------------------------------------- .zip


def load_zip(path_or_file: Source, name: str | None = None, limits: Limits = DATASET) -> ImageSet:
    """Validate and decode a .zip of same-size PNG/JPEG images; first-level folders become class labels."""
    with _opened(path_or_file, name, ".zip") as (fh, label, source):
        with _open_zip(fh, label, ".zip") as zf:
            members = _image_members(zf, label, limits)
            images = _decode_members(zf, members, label, limits)
    labels, class_names = _folder_labels([m.filename for m in members])
    return ImageSet(images, labels, class_names, source)


def _parts(name: str) -> list[str]:
    """Path components of a member name, treating '/' and '\\' as separators."""
    return [p for p in re.split(r"[\\/]+", name) if p]


def _check_member_safe(info: zipfile.ZipInfo, label: str) -> None:
    """Refuse absolute paths, drive letters, '..' components and symbolic links."""
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in _parts(name):
        raise DataError(
            f"'{label}' member '{shown(name)}' has an unsafe path (absolute or containing '..'); "
            "re-create the archive with relative paths."
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DataError(f"'{label}' member '{shown(name)}' is a symbolic link, which is refused for safety.")


def _is_skipped(info: zipfile.ZipInfo) -> bool:
    """True for directories and hidden or OS junk entries (__MACOSX/, .DS_Store, ._x, Thumbs.db)."""
    parts = _parts(info.filename)
    return info.is_dir() or not parts or any(p.startswith(".") or p in JUNK_NAMES for p in parts)


def _image_members(zf: zipfile.ZipFile, label: str, limits: Limits) -> list[zipfile.ZipInfo]:
    """The archive's image members, sorted by name, after safety, type, count and zip-bomb checks."""
    members = []
    for info in zf.infolist():
        _check_member_safe(info, label)
        if _is_skipped(info):
            continue
        if not info.filename.lower().endswith(IMAGE_SUFFIXES):
            raise DataError(f"'{label}' member '{shown(info.filename)}' is not a .png, .jpg or .jpeg image.")
        _check_ratio(info, label)
        members.append(info)
    if not members:
        raise DataError(f"'{label}' contains no .png, .jpg or .jpeg images.")
    _check_count(len(members), label, limits)
    return sorted(members, key=lambda i: _parts(i.filename))


def _check_ratio(info: zipfile.ZipInfo, label: str) -> None:
    """Refuse a large member whose compression ratio exceeds MAX_ZIP_RATIO (a zip bomb)."""
    if info.file_size <= ZIP_RATIO_MIN_BYTES:
        return
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > MAX_ZIP_RATIO:
        raise DataError(
            f"'{label}' member '{shown(info.filename)}' is compressed {ratio:.0f}:1, beyond the "
            f"{MAX_ZIP_RATIO}:1 limit (possible zip bomb)."
        )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, label: str) -> bytes:
    """Read one member in chunks, counting real bytes against its declared size and the archive budget."""
    limit = min(info.file_size, budget)
    buf = bytearray()
    try:
        with zf.open(info) as fp:
            while chunk := fp.read(_CHUNK):
                buf += chunk
                if len(buf) > limit:
                    raise DataError(
                        f"'{label}' member '{shown(info.filename)}' unpacks to more than its declared size or the "
                        f"{_human(MAX_ZIP_UNCOMPRESSED_BYTES)} archive limit."
                    )
    except DataError:
        raise
    except NotImplementedError as exc:  # a RuntimeError subclass, so caught first
        raise DataError(f"'{label}' member '{shown(info.filename)}' uses an unsupported compression method.") from exc
    except RuntimeError as exc:  # encrypted member
        raise DataError(f"'{label}' member '{shown(info.filename)}' is password-protected, which is not supported.") from exc
    except Exception as exc:  # bad CRC, truncated data, zlib errors
        raise DataError(f"'{label}' member '{shown(info.filename)}' is corrupt.") from exc
    return bytes(buf)


def _decode_members(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], label: str, limits: Limits) -> np.ndarray:
    """Decode every member into one uint8 (N, H, W, C) array: C=1 if all are grayscale, else RGB."""
    out: np.ndarray | None = None
    first = shown(members[0].filename)
    budget = MAX_ZIP_UNCOMPRESSED_BYTES
    all_gray = True
    for i, info in enumerate(members):
        data = _read_member(zf, info, budget, label)
        budget -= len(data)
        expected = None if out is None else (out.shape[2], out.shape[1])
        pixels = _decode_image(data, shown(info.filename), label, expected, first, limits)
        if out is None:
            out = _allocate(len(members), pixels.shape[0], pixels.shape[1], label)
        all_gray = all_gray and pixels.ndim == 2
        out[i] = pixels[..., None] if pixels.ndim == 2 else pixels
    assert out is not None
    return np.ascontiguousarray(out[..., :1]) if all_gray else out


def _allocate(n: int, h: int, w: int, label: str) -> np.ndarray:
    """Allocate the (N, H, W, 3) output, refusing sets larger than MAX_DECODED_BYTES."""
    size = n * h * w * 3
    if size > MAX_DECODED_BYTES:
        raise DataError(
            f"The {n} images of {w}x{h} pixels in '{label}' would take {_human(size)}, "
            f"more than the {_human(MAX_DECODED_BYTES)} limit."
        )
    return np.empty((n, h, w, 3), np.uint8)


def _decode_image(
    data: bytes, member: str, label: str, expected: tuple[int, int] | None, first: str, limits: Limits
) -> np.ndarray:
    """Decode PNG/JPEG bytes to (H, W) gray or (H, W, 3) RGB uint8, checking sizes before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as img:
                _check_image_size(img.size, member, label, expected, first, limits)
                img.load()
                return _pixels(img)
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(
            f"'{label}' member '{member}' has more than {MAX_IMAGE_PIXELS} pixels (possible decompression bomb)."
        ) from exc
    except Exception as exc:  # PIL raises many types for malformed files
        raise DataError(f"'{label}' member '{member}' is not a readable PNG/JPEG image.") from exc


def _check_image_size(
    size: tuple[int, int], member: str, label: str, expected: tuple[int, int] | None, first: str, limits: Limits
) -> None:
    """Refuse images above the pixel cap, outside limits.min_side..MAX_SIDE, or differing from the first image."""
    w, h = size
    if w * h > MAX_IMAGE_PIXELS:
        raise DataError(
            f"'{label}' member '{member}' is {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS}-pixel limit "
            "(possible decompression bomb)."
        )
    if not (limits.min_side <= w <= MAX_SIDE and limits.min_side <= h <= MAX_SIDE):
        raise DataError(
            f"'{label}' member '{member}' is {w}x{h} pixels; "
            f"width and height must be between {limits.min_side} and {MAX_SIDE}."
        )
    if expected is not None and (w, h) != expected:
        raise DataError(
            f"'{label}' member '{member}' is {w}x{h} pixels but '{first}' is {expected[0]}x{expected[1]}; "
            "all images must have the same size."
        )


def _pixels(img: Image.Image) -> np.ndarray:
    """Pixels of a loaded image: (H, W) uint8 for grayscale modes, (H, W, 3) uint8 RGB otherwise."""
    if img.mode.startswith("I"):  # 16/32-bit grayscale PNG: 0..65535 -> 0..255
        return np.clip(np.rint(np.asarray(img, np.float64) / 257.0), 0, 255).astype(np.uint8)
    if img.mode in _GRAY_MODES:
        return np.asarray(img.convert("L"), np.uint8)
    return np.asarray(img.convert("RGB"), np.uint8)


def _folder_labels(names: list[str]) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """Labels from first-level folders ('3/a.png' or 'root/3/a.png'); unlabelled unless >= 2 such folders."""
    paths = [_parts(n) for n in names]
    if all(len(p) == 3 for p in paths) and len({p[0] for p in paths}) == 1:
        paths = [p[1:] for p in paths]
    if not all(len(p) == 2 for p in paths):
        return None, ()
    folders = [p[0] for p in paths]
    unique = set(folders)
    if len(unique) < 2:
        return None, ()
    digits = all(f.isascii() and f.isdigit() for f in unique)
    classes = tuple(sorted(unique, key=(lambda f: (int(f), f)) if digits else None))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[f] for f in folders], np.int64), classes
