"""Tests for gan_core.data.uploads: .npz and .zip validation, with exact messages and no files written."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_core.data import uploads
from gan_core.data.uploads import load_npz, load_zip
from gan_core.errors import DataError

# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _cwd_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from tmp_path so a loader writing relative files would show up in the listing."""
    monkeypatch.chdir(tmp_path)


def listing(root: Path) -> list[tuple[str, int]]:
    """Every path under root with its size, to detect writes."""
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


def rejects(tmp_path: Path, call, *fragments: str) -> str:
    """Assert call() raises one-sentence DataError containing every fragment and writes nothing."""
    before = listing(tmp_path)
    with pytest.raises(DataError) as err:
        call()
    msg = str(err.value)
    assert listing(tmp_path) == before, "loader wrote files"
    assert "\n" not in msg and msg.endswith("."), msg
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    return msg


def png(size: tuple[int, int] = (28, 28), mode: str = "L", value: int | tuple = 200, fmt: str = "PNG") -> bytes:
    """Encode a solid image of the given size (w, h) and mode."""
    buf = io.BytesIO()
    Image.new(mode, size, value).save(buf, format=fmt)
    return buf.getvalue()


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], deflate: bool = True) -> Path:
    """Write a zip with the given members (name or ZipInfo, data)."""
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def flat(n: int = 20, **kw) -> list[tuple[str, bytes]]:
    """n grayscale PNG members at the archive root."""
    return [(f"img{i:03d}.png", png(**kw)) for i in range(n)]


def npz(path: Path, **arrays) -> Path:
    """Write arrays with np.savez and return the path."""
    np.savez(path, **arrays)
    return path


# ---------------------------------------------------------------- .npz: accepted


def test_npz_uint8_nhw(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    ds = load_npz(npz(tmp_path / "d.npz", x=x))
    assert ds.images.shape == (20, 28, 28, 1) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images[..., 0], x)
    assert ds.labels is None and ds.class_names == () and ds.num_classes == 0
    assert ds.source == str(tmp_path / "d.npz")


def test_npz_rgb_and_one_channel(tmp_path: Path) -> None:
    assert load_npz(npz(tmp_path / "a.npz", x=np.zeros((16, 8, 9, 3), np.uint8))).image_shape == (8, 9, 3)
    assert load_npz(npz(tmp_path / "b.npz", x=np.zeros((16, 8, 9, 1), np.uint8))).image_shape == (8, 9, 1)


def test_npz_float_0_1(tmp_path: Path) -> None:
    x = np.tile(np.array([0.0, 0.5, 1.0, 0.2], np.float32), 16 * 64 // 4).reshape(16, 8, 8)
    ds = load_npz(npz(tmp_path / "f.npz", x=x))
    assert ds.images.reshape(-1)[:4].tolist() == [0, 128, 255, 51]


def test_npz_float_minus1_1(tmp_path: Path) -> None:
    x = np.tile(np.array([-1.0, 0.0, 1.0, -0.6], np.float64), 16 * 64 // 4).reshape(16, 8, 8)
    ds = load_npz(npz(tmp_path / "f.npz", x=x))
    assert ds.images.reshape(-1)[:4].tolist() == [0, 128, 255, 51]


def test_npz_float_0_255_and_int16(tmp_path: Path) -> None:
    x = np.tile(np.array([0.0, 17.2, 255.0, 3.0]), 16 * 64 // 4).reshape(16, 8, 8)
    assert load_npz(npz(tmp_path / "f.npz", x=x)).images.reshape(-1)[:4].tolist() == [0, 17, 255, 3]
    xi = x.astype(np.int16)
    assert load_npz(npz(tmp_path / "i.npz", x=xi)).images.reshape(-1)[:4].tolist() == [0, 17, 255, 3]


def test_npz_labels_remapped(tmp_path: Path) -> None:
    y = np.array([9, 3, 7, 3] * 5, np.int32)
    ds = load_npz(npz(tmp_path / "l.npz", x=np.zeros((20, 8, 8), np.uint8), y=y))
    assert ds.class_names == ("3", "7", "9") and ds.num_classes == 3
    assert ds.labels.dtype == np.int64 and ds.labels[:4].tolist() == [2, 0, 1, 0]


def test_npz_single_class_is_unlabelled(tmp_path: Path) -> None:
    ds = load_npz(npz(tmp_path / "one.npz", x=np.zeros((16, 8, 8), np.uint8), y=np.full(16, 4)))
    assert ds.labels is None and ds.num_classes == 0 and ds.class_names == ()


def test_npz_whole_float_labels_accepted(tmp_path: Path) -> None:
    ds = load_npz(npz(tmp_path / "l.npz", x=np.zeros((16, 8, 8), np.uint8), y=np.arange(16.0) % 2))
    assert ds.class_names == ("0", "1")


def test_npz_from_file_objects(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((16, 8, 8), np.uint8))
    buf.seek(5)  # a half-read upload must still load from the start
    ds = load_npz(buf, name="mine.npz")
    assert ds.source == "mine.npz" and ds.images.shape == (16, 8, 8, 1)

    class Stream(io.RawIOBase):
        """A non-seekable stream."""

        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            chunk = self._inner.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    assert load_npz(Stream(buf.getvalue())).source == "upload.npz"
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- .npz: refused


def test_npz_pickled_object_array(tmp_path: Path) -> None:
    path = npz(tmp_path / "p.npz", x=np.array([{"a": 1}] * 16, dtype=object))
    rejects(tmp_path, lambda: load_npz(path), "'" + str(path) + "'", "pickled Python objects", "np.savez")


def test_npz_pickled_labels(tmp_path: Path) -> None:
    path = npz(tmp_path / "p.npz", x=np.zeros((16, 8, 8), np.uint8), y=np.array(["a"] * 16, dtype=object))
    rejects(tmp_path, lambda: load_npz(path), "pickled Python objects")


def test_npz_missing_x(tmp_path: Path) -> None:
    path = npz(tmp_path / "m.npz", images=np.zeros((16, 8, 8), np.uint8), labels=np.zeros(16))
    rejects(tmp_path, lambda: load_npz(path), "no array named 'x'", "found: images, labels")


def test_npz_wrong_rank(tmp_path: Path) -> None:
    path = npz(tmp_path / "r.npz", x=np.zeros((20, 28), np.uint8))
    rejects(tmp_path, lambda: load_npz(path), "'x'", "has shape (20, 28)", "(N, H, W, 3)")


def test_npz_four_channels(tmp_path: Path) -> None:
    path = npz(tmp_path / "c.npz", x=np.zeros((20, 8, 8, 4), np.uint8))
    rejects(tmp_path, lambda: load_npz(path), "has shape (20, 8, 8, 4)")


def test_npz_nan_pixels(tmp_path: Path) -> None:
    x = np.zeros((16, 8, 8), np.float32)
    x[3, 2, 1] = np.nan
    path = npz(tmp_path / "n.npz", x=x)
    rejects(tmp_path, lambda: load_npz(path), "NaN or infinite")
    x[3, 2, 1] = np.inf
    path = npz(tmp_path / "n.npz", x=x)
    rejects(tmp_path, lambda: load_npz(path), "NaN or infinite")


def test_npz_float_out_of_range(tmp_path: Path) -> None:
    x = np.zeros((16, 8, 8), np.float32)
    x[0, 0, 0], x[1, 1, 1] = -3.0, 7.5
    path = npz(tmp_path / "o.npz", x=x)
    rejects(tmp_path, lambda: load_npz(path), "range from -3 to 7.5", "[0, 1], [-1, 1] or [0, 255]")


def test_npz_int_out_of_range(tmp_path: Path) -> None:
    x = np.zeros((16, 8, 8), np.int32)
    x[0, 0, 0] = 300
    path = npz(tmp_path / "o.npz", x=x)
    rejects(tmp_path, lambda: load_npz(path), "range from 0 to 300", "0..255")


@pytest.mark.parametrize("dtype", [np.complex128, np.bool_, "U3"])
def test_npz_bad_dtype(tmp_path: Path, dtype) -> None:
    path = npz(tmp_path / "t.npz", x=np.zeros((16, 8, 8), dtype))
    rejects(tmp_path, lambda: load_npz(path), f"has dtype {np.dtype(dtype)}", "uint8")


def test_npz_wrong_label_length(tmp_path: Path) -> None:
    path = npz(tmp_path / "y.npz", x=np.zeros((20, 8, 8), np.uint8), y=np.zeros(10, np.int64))
    rejects(tmp_path, lambda: load_npz(path), "'y'", "has 10 labels but 'x' has 20 images")


def test_npz_bad_labels(tmp_path: Path) -> None:
    x = np.zeros((16, 8, 8), np.uint8)
    neg = npz(tmp_path / "neg.npz", x=x, y=np.arange(16) - 1)
    rejects(tmp_path, lambda: load_npz(neg), "negative label -1")
    two_d = npz(tmp_path / "2d.npz", x=x, y=np.zeros((16, 10)))
    rejects(tmp_path, lambda: load_npz(two_d), "'y'", "has shape (16, 10)", "1-D")
    frac = npz(tmp_path / "frac.npz", x=x, y=np.full(16, 0.5))
    rejects(tmp_path, lambda: load_npz(frac), "'y'", "labels must be integers")


def test_npz_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    rejects(tmp_path, lambda: load_npz(path), str(path), "is not a valid .npz file")


@pytest.mark.parametrize("data", [b"this is not an npz at all", b"PK\x03\x04garbage" * 10])
def test_npz_garbage(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(data)
    rejects(tmp_path, lambda: load_npz(path), "is not a valid .npz file")


def test_npz_plain_npy_renamed(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.zeros((16, 8, 8), np.uint8))
    rejects(tmp_path, lambda: load_npz(path), "is not a valid .npz file", "np.savez")


def test_npz_truncated(tmp_path: Path) -> None:
    path = npz(tmp_path / "t.npz", x=np.zeros((16, 8, 8), np.uint8))
    path.write_bytes(path.read_bytes()[:200])
    rejects(tmp_path, lambda: load_npz(path), "is not a valid .npz file")


def test_npz_too_few_and_too_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    few = npz(tmp_path / "few.npz", x=np.zeros((5, 8, 8), np.uint8))
    rejects(tmp_path, lambda: load_npz(few), "holds 5 images", "at least 16")
    monkeypatch.setattr(uploads, "MAX_IMAGES", 20)
    many = npz(tmp_path / "many.npz", x=np.zeros((21, 8, 8), np.uint8))
    rejects(tmp_path, lambda: load_npz(many), "holds 21 images", "20 limit")


@pytest.mark.parametrize("shape", [(16, 4, 8), (16, 8, 300)])
def test_npz_image_side_limits(tmp_path: Path, shape) -> None:
    path = npz(tmp_path / "s.npz", x=np.zeros(shape, np.uint8))
    rejects(tmp_path, lambda: load_npz(path), f"{shape[1]}x{shape[2]} pixels", "between 8 and 256")


def test_npz_file_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = npz(tmp_path / "big.npz", x=np.zeros((16, 8, 8), np.uint8))
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 100)
    rejects(tmp_path, lambda: load_npz(path), "larger than the 100 bytes upload limit")


def test_npz_missing_path(tmp_path: Path) -> None:
    rejects(tmp_path, lambda: load_npz(tmp_path / "gone.npz"), "gone.npz", "does not exist")


# ---------------------------------------------------------------- .zip: accepted


def test_zip_flat_grayscale(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "g.zip", flat(20, value=77))
    ds = load_zip(path)
    assert ds.images.shape == (20, 28, 28, 1) and ds.images.dtype == np.uint8
    assert int(ds.images.min()) == int(ds.images.max()) == 77
    assert ds.labels is None and ds.num_classes == 0 and ds.source == str(path)


def test_zip_class_folders(tmp_path: Path) -> None:
    members = [(f"{c}/{i}.png", png(value=int(c))) for c in ("10", "2", "3") for i in range(6)]
    members += [("__MACOSX/2/._0.png", b"junk"), (".DS_Store", b"junk"), ("2/.hidden.png", b"junk")]
    ds = load_zip(make_zip(tmp_path / "c.zip", members))
    assert ds.class_names == ("2", "3", "10")  # digit folders sorted numerically
    assert ds.images.shape == (18, 28, 28, 1)
    # each image's pixel value equals its folder name: labels match folders
    values = ds.images[:, 0, 0, 0].astype(int)
    assert [ds.class_names[k] for k in ds.labels] == [str(v) for v in values]


def test_zip_class_folders_under_one_root(tmp_path: Path) -> None:
    members = [(f"root/{c}/{i}.png", png()) for c in ("cat", "dog") for i in range(8)]
    members.append(("root/", b""))
    ds = load_zip(make_zip(tmp_path / "r.zip", members))
    assert ds.class_names == ("cat", "dog") and np.bincount(ds.labels).tolist() == [8, 8]


def test_zip_single_folder_is_unlabelled(tmp_path: Path) -> None:
    ds = load_zip(make_zip(tmp_path / "s.zip", [(f"images/{i}.png", png()) for i in range(16)]))
    assert ds.labels is None


def test_zip_mixed_modes_become_rgb(tmp_path: Path) -> None:
    members = flat(15, value=90) + [("rgb.png", png(mode="RGB", value=(255, 0, 0)))]
    members.append(("photo.jpg", png(mode="RGB", value=(0, 0, 255), fmt="JPEG")))
    ds = load_zip(make_zip(tmp_path / "m.zip", members))
    assert ds.images.shape == (17, 28, 28, 3)
    names = sorted(n for n, _ in members)
    assert ds.images[names.index("img000.png"), 0, 0].tolist() == [90, 90, 90]
    assert ds.images[names.index("rgb.png"), 0, 0].tolist() == [255, 0, 0]


def test_zip_16bit_grayscale(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.full((10, 12), 65535, np.uint16)).save(buf, format="PNG")
    ds = load_zip(make_zip(tmp_path / "h.zip", [(f"{i}.png", buf.getvalue()) for i in range(16)]))
    assert ds.image_shape == (10, 12, 1) and int(ds.images.min()) == 255


def test_zip_from_file_object(tmp_path: Path) -> None:
    buf = io.BytesIO()
    make_zip(buf, flat(16))  # type: ignore[arg-type]
    ds = load_zip(buf, name="digits.zip")
    assert ds.source == "digits.zip" and ds.images.shape[0] == 16
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- .zip: refused


@pytest.mark.parametrize("bad", ["../evil.png", "a/../../evil.png", "/etc/x.png", "C:\\evil.png", "a\\..\\evil.png"])
def test_zip_unsafe_paths(tmp_path: Path, bad: str) -> None:
    path = make_zip(tmp_path / "u.zip", flat(16) + [(bad, png())])
    rejects(tmp_path, lambda: load_zip(path), f"member '{bad}'", "unsafe path")
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_symlink(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link.png")
    info.external_attr = 0o120777 << 16
    path = make_zip(tmp_path / "s.zip", flat(16) + [(info, b"/etc/passwd")])
    rejects(tmp_path, lambda: load_zip(path), "member 'link.png'", "symbolic link")


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "b.zip", flat(16) + [("bomb.png", bytes(20 * 1024 * 1024))])
    assert path.stat().st_size < 200_000
    rejects(tmp_path, lambda: load_zip(path), "member 'bomb.png'", "zip bomb", "100:1")


def test_zip_total_uncompressed_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_zip(tmp_path / "t.zip", flat(16))
    monkeypatch.setattr(uploads, "MAX_ZIP_UNCOMPRESSED_BYTES", 500)
    rejects(tmp_path, lambda: load_zip(path), "would unpack to", "KB, more than the 500 bytes limit")


def test_zip_lying_size_header(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "l.zip", flat(16))
    data = bytearray(path.read_bytes())
    cd = data.index(b"PK\x01\x02")  # first central-directory entry: declare 10 bytes instead of the real size
    struct.pack_into("<I", data, cd + 24, 10)
    path.write_bytes(bytes(data))
    rejects(tmp_path, lambda: load_zip(path), "member 'img000.png'")


def test_zip_decoded_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_zip(tmp_path / "d.zip", flat(16))
    monkeypatch.setattr(uploads, "MAX_DECODED_BYTES", 1000)
    rejects(tmp_path, lambda: load_zip(path), "The 16 images of 28x28 pixels", "would take 37 KB", "1000 bytes limit")


def test_human_sizes() -> None:
    assert uploads._human(uploads.MAX_FILE_BYTES) == "200 MB"
    assert uploads._human(uploads.MAX_ZIP_UNCOMPRESSED_BYTES) == "1 GB"
    assert uploads._human(2048) == "2 KB" and uploads._human(12) == "12 bytes"


def test_zip_too_many_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_zip(tmp_path / "n.zip", flat(20))
    monkeypatch.setattr(uploads, "MAX_ZIP_MEMBERS", 5)
    rejects(tmp_path, lambda: load_zip(path), "has 20 entries", "5 limit")


def test_zip_pixel_cap_monkeypatched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_zip(tmp_path / "p.zip", flat(16))
    monkeypatch.setattr(uploads, "MAX_IMAGE_PIXELS", 100)
    rejects(tmp_path, lambda: load_zip(path), "member 'img000.png' is 28x28 pixels", "100-pixel limit", "bomb")


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but holds almost no data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [5000, 100_000])  # over our cap; far over Pillow's own bomb limit
def test_zip_crafted_huge_png(tmp_path: Path, side: int) -> None:
    path = make_zip(tmp_path / "h.zip", flat(16) + [("zz.png", _png_header(side, side))])
    rejects(tmp_path, lambda: load_zip(path), "member 'zz.png'", "decompression bomb")


def test_zip_oversized_side(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "o.zip", flat(16, size=(300, 20)))
    rejects(tmp_path, lambda: load_zip(path), "300x20 pixels", "between 8 and 256")


def test_zip_non_image_png(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "f.zip", flat(16) + [("a.png", b"definitely not a png")])
    rejects(tmp_path, lambda: load_zip(path), "member 'a.png' is not a readable PNG/JPEG image")


def test_zip_gif_renamed_png(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "g.zip", flat(16) + [("anim.png", png(fmt="GIF"))])
    rejects(tmp_path, lambda: load_zip(path), "member 'anim.png' is not a readable PNG/JPEG image")


def test_zip_mixed_sizes(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "x.zip", flat(16) + [("z.png", png(size=(32, 30)))])
    rejects(tmp_path, lambda: load_zip(path), "member 'z.png' is 32x30 pixels but 'img000.png' is 28x28")


def test_zip_text_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "t.zip", flat(16) + [("notes.txt", b"hello")])
    rejects(tmp_path, lambda: load_zip(path), "member 'notes.txt' is not a .png, .jpg or .jpeg image")


def test_zip_too_few_and_no_images(tmp_path: Path) -> None:
    few = make_zip(tmp_path / "few.zip", flat(3))
    rejects(tmp_path, lambda: load_zip(few), "holds 3 images", "at least 16")
    none = make_zip(tmp_path / "none.zip", [("__MACOSX/x", b"1"), ("dir/", b"")])
    rejects(tmp_path, lambda: load_zip(none), "contains no .png, .jpg or .jpeg images")


@pytest.mark.parametrize("data", [b"", b"not a zip file at all"])
def test_zip_empty_or_garbage(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(data)
    rejects(tmp_path, lambda: load_zip(path), "'" + str(path) + "' is not a valid .zip file")


def test_zip_corrupt_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "c.zip", flat(16), deflate=False)
    data = bytearray(path.read_bytes())
    pos = data.index(b"IHDR")  # flip bytes inside the first stored PNG: CRC check must fail
    data[pos : pos + 4] = b"XXXX"
    path.write_bytes(bytes(data))
    rejects(tmp_path, lambda: load_zip(path), "member 'img000.png' is corrupt")


def test_dataset_dispatch_to_zip(tmp_path: Path) -> None:
    from gan_core.data.datasets import load_dataset

    path = make_zip(tmp_path / "d.ZIP", flat(16))
    assert load_dataset(str(path)).images.shape == (16, 28, 28, 1)
    assert os.listdir(tmp_path) == ["d.ZIP"]
