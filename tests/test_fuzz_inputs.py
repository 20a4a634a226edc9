"""Property-based tests of hostile files: dataset .npz/.zip uploads and generator .keras uploads.

Every input gives a valid result or one DataError sentence; no other exception escapes, nothing is written
(outside a temporary folder that is gone again), and a .keras upload never runs code.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as nps
from PIL import Image

from gan_core.data import uploads
from gan_core.data.datasets import BUILTIN_DATASETS, SPLITS, load_dataset
from gan_core.data.imageset import ImageSet
from gan_core.data.uploads import load_npz, load_zip
from gan_core.errors import DataError

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True)
MB = 1024 * 1024


# ---------------------------------------------------------------- shared checks


@pytest.fixture(scope="module")
def sandbox():
    """A folder that is the working directory and tempfile's folder for this module; tests assert it stays unchanged."""
    old_cwd, old_temp = os.getcwd(), tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="fuzz-inputs-") as base:
        root = Path(base)
        (root / "work").mkdir()
        (root / "tmp").mkdir()
        os.chdir(root / "work")
        tempfile.tempdir = str(root / "tmp")
        try:
            yield root
        finally:
            os.chdir(old_cwd)
            tempfile.tempdir = old_temp


def listing(root: Path) -> list[tuple[str, int]]:
    """Every path under root with its size (-1 for folders)."""
    return sorted((str(p.relative_to(root)), p.stat().st_size if p.is_file() else -1) for p in root.rglob("*"))


def assert_one_sentence(message: str) -> None:
    """A user-facing message: non-empty, one line, short, ending like a sentence."""
    assert message.strip(), "empty message"
    assert len(message.splitlines()) == 1, f"message spans lines: {message!r}"
    assert len(message) < 1000, f"message too long ({len(message)} chars)"
    assert message.endswith("."), message


def outcome_event(name: str) -> None:
    """Count outcomes in Hypothesis' statistics (pytest --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(name)


def assert_valid_image_set(images: ImageSet) -> None:
    """The contract training relies on: uint8 NHWC in the size limits, labels 0..K-1 with every class present."""
    n, h, w, c = images.images.shape
    assert images.images.dtype == np.uint8 and c in (1, 3)
    assert uploads.MIN_IMAGES <= n <= uploads.MAX_IMAGES
    assert uploads.MIN_SIDE <= h <= uploads.MAX_SIDE and uploads.MIN_SIDE <= w <= uploads.MAX_SIDE
    if images.labels is None:
        assert images.class_names == () and images.num_classes == 0
    else:
        assert images.labels.dtype == np.int64 and images.labels.shape == (n,)
        assert len(images.class_names) >= 2 and len(set(images.class_names)) == len(images.class_names)
        assert set(images.labels.tolist()) == set(range(len(images.class_names)))


def check_loader(load, data: bytes, suffix: str, root: Path) -> ImageSet | None:
    """Load data from a file and as an upload: the same valid ImageSet or the same DataError sentence, nothing written."""
    path = root / "work" / f"input{suffix}"
    path.write_bytes(data)
    before = listing(root)
    results = []
    for source in (path, io.BytesIO(data)):
        try:
            results.append(load(source, f"input{suffix}"))
        except DataError as exc:
            assert_one_sentence(str(exc))
            results.append(str(exc))
    assert listing(root) == before, "a loader wrote files"
    from_path, from_upload = results
    outcome_event("refused" if isinstance(from_path, str) else "loaded")
    if isinstance(from_path, str):
        assert from_upload == from_path
        return None
    assert_valid_image_set(from_path)
    assert np.array_equal(from_path.images, from_upload.images)
    assert from_path.class_names == from_upload.class_names
    assert (from_path.labels is None) == (from_upload.labels is None)
    return from_path


@st.composite
def mutated(draw, base: bytes) -> bytes:
    """base with 1 to 4 edits: bits flipped, bytes set, inserted or deleted, or the end cut off."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return bytes(data)


# ---------------------------------------------------------------- .npz


def npz_bytes(compressed: bool = False, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


RNG = np.random.default_rng(0)
GOOD_X = RNG.integers(0, 256, (16, 8, 8), dtype=np.uint8)
GOOD_Y = np.arange(16) % 3
GOOD_NPZ = [npz_bytes(False, x=GOOD_X, y=GOOD_Y), npz_bytes(True, x=GOOD_X.astype(np.float32) / 255, y=GOOD_Y)]


def test_the_unmutated_npz_files_load(sandbox):
    for data in GOOD_NPZ:
        loaded = check_loader(load_npz, data, ".npz", sandbox)
        assert loaded is not None and loaded.images.shape == (16, 8, 8, 1) and loaded.num_classes == 3


@FUZZ
@given(st.sampled_from(GOOD_NPZ).flatmap(mutated))
def test_a_mutated_npz_loads_or_is_one_data_error(sandbox, data):
    check_loader(load_npz, data, ".npz", sandbox)


@FUZZ
@given(st.binary(max_size=2000) | st.binary(max_size=200).map(lambda tail: b"PK\x03\x04" + tail))
def test_random_bytes_are_one_data_error(sandbox, data):
    assert check_loader(load_npz, data, ".npz", sandbox) is None
    assert check_loader(load_zip, data, ".zip", sandbox) is None


COUNTS = st.sampled_from([0, 1, 15, 16, 17])
SIDES = st.sampled_from([0, 1, 7, 8, 9, 12])
X_SHAPES = (
    st.tuples(COUNTS, SIDES, SIDES)
    | st.tuples(COUNTS, SIDES, SIDES, st.sampled_from([0, 1, 2, 3, 4]))
    | nps.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4)
)
DTYPES = (
    nps.scalar_dtypes()
    | nps.byte_string_dtypes(max_len=3)
    | nps.unicode_string_dtypes(max_len=3)
    | nps.array_dtypes(nps.scalar_dtypes(), max_size=2)
)
OBJECTS = nps.arrays(object, nps.array_shapes(max_dims=3, max_side=4), elements=st.integers() | st.text(max_size=3))
Y_ARRAYS = nps.arrays(
    nps.scalar_dtypes(), st.tuples(st.sampled_from([0, 15, 16, 17])) | nps.array_shapes(max_dims=2, max_side=17)
)


PIXEL_RANGES = st.sampled_from([(0, 1), (-1, 1), (0, 255), (-2, 300)])


@st.composite
def plausible_images(draw) -> np.ndarray:
    """Images of a valid shape and numeric dtype, in or just outside a pixel range, sometimes with a NaN."""
    dtype = np.dtype(draw(st.sampled_from(["uint8", "int16", "int64", "uint16", "float16", "float32", ">f8"])))
    shape = draw(st.tuples(st.sampled_from([16, 20]), st.sampled_from([8, 12]), st.sampled_from([8, 9])))
    shape += draw(st.sampled_from([(), (1,), (3,)]))
    low, high = draw(PIXEL_RANGES)
    if dtype.kind in "iu":
        low, high = max(low, np.iinfo(dtype).min), min(high, np.iinfo(dtype).max)
    images = draw(nps.arrays(dtype, shape, elements=nps.from_dtype(dtype, min_value=low, max_value=high)))
    if dtype.kind == "f" and draw(st.integers(0, 4)) == 0:
        images.flat[draw(st.integers(0, images.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return images


@st.composite
def npz_files(draw) -> bytes:
    """An .npz of an 'x' (random dtype, shape and values: NaN, inf, out of range), maybe 'y' and other arrays."""
    arrays = {}
    if draw(st.integers(0, 9)):
        arrays["x"] = draw(plausible_images() | nps.arrays(DTYPES, X_SHAPES) | OBJECTS)
    if draw(st.booleans()):
        x = arrays.get("x")
        n = x.shape[0] if x is not None and x.ndim else 16
        labels = nps.arrays(st.sampled_from(["int64", "uint8", "float32"]), st.sampled_from([n, max(n - 1, 0), n + 1]), elements=st.integers(0, 3))
        arrays["y"] = draw(labels | Y_ARRAYS | OBJECTS)
    for name in draw(st.lists(st.text(min_size=1, max_size=6), max_size=2)):
        arrays[name] = draw(nps.arrays(nps.scalar_dtypes(), nps.array_shapes(max_dims=2, max_side=3)))
    return npz_bytes(draw(st.booleans()), **arrays)


@FUZZ
@given(npz_files())
def test_a_random_npz_loads_or_is_one_data_error(sandbox, data):
    loaded = check_loader(load_npz, data, ".npz", sandbox)
    if loaded is not None:  # only finite numeric pixels are accepted, one image per entry of x
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            x = stored["x"]
        assert x.dtype.kind in "uif" and np.all(np.isfinite(x))
        assert loaded.images.shape[:3] == x.shape[:3]


@st.composite
def npz_with_lying_header(draw) -> bytes:
    """An .npz whose x.npy header claims any shape and dtype, followed by too little or random data."""
    header = io.BytesIO()
    shape = draw(st.tuples(*[st.integers(-2, 100_001)] * draw(st.integers(0, 5))))
    dtype = draw(st.sampled_from(["|u1", "<f8", ">f4", "<f16", "<i8", "|b1", "<c8", "|O", "<U2", "<m8[s]", "V3"]))
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": draw(st.booleans()), "shape": shape})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + draw(st.binary(max_size=64)))
    return out.getvalue()


@FUZZ
@given(npz_with_lying_header())
def test_an_npy_header_that_lies_about_its_size_is_one_data_error(sandbox, data):
    assert check_loader(load_npz, data, ".npz", sandbox) is None


# ---------------------------------------------------------------- .zip


def image_bytes(size=(8, 8), mode="L", fmt="PNG", value=100) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value).save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but that holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real 8x8 JPEG whose frame header is patched to claim width x height pixels."""
    data = bytearray(image_bytes(fmt="JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def zip_bytes(members, method=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of (name or ZipInfo, data) members; duplicate names are allowed."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", method) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name" is part of the fuzzing
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def entry(name: str, mode: int, method: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    info.compress_type = method
    return info


CLASS_IMAGES = [(f"{i % 2}/img{i:02d}.png", image_bytes(value=i * 10)) for i in range(16)]
GOOD_ZIPS = [
    zip_bytes(CLASS_IMAGES, zipfile.ZIP_STORED),
    zip_bytes([(f"photos/{i:02d}.jpg", image_bytes(mode="RGB", fmt="JPEG", value=(i, 2 * i, 3 * i))) for i in range(16)]),
]
SAFE_NAMES = ["a.png", "0/a.png", "1/b.png", "x.JPG", "root/2/c.jpeg", "dir/", "__MACOSX/._a.png", ".DS_Store", "Thumbs.db"]
UNSAFE_NAMES = ["../x.png", "a/../../x.png", "/abs.png", "C:\\x.png", "a\\..\\b.png", "x.txt", "inner.zip"]
MEMBER_NAMES = st.sampled_from(SAFE_NAMES + UNSAFE_NAMES) | st.text(max_size=10).map(lambda t: t + ".png")
MEMBER_DATA = st.sampled_from(
    [
        image_bytes(),
        image_bytes(mode="RGB"),
        image_bytes(mode="I;16", value=40000),
        image_bytes(mode="P"),
        image_bytes(size=(12, 12)),
        image_bytes(size=(4, 300)),
        image_bytes(fmt="JPEG"),
        image_bytes(fmt="GIF"),
        png_claiming(100_000, 100_000),
        png_claiming(5000, 5000),
        jpeg_claiming(65_000, 65_000),
        bytes(2 * MB),  # compresses over 100:1, a zip bomb
        b"",
    ]
) | st.binary(max_size=100)
MODES = st.sampled_from([0, stat.S_IFREG | 0o644, stat.S_IFLNK | 0o777, stat.S_IFDIR | 0o755, stat.S_IFIFO | 0o644])
METHODS = st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])


@st.composite
def zip_files(draw) -> bytes:
    """Maybe 16 good images, plus random members: odd or unsafe names, links, bombs, huge headers, non-images."""
    members = list(CLASS_IMAGES) if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 4))):
        info = entry(draw(MEMBER_NAMES), draw(MODES), draw(METHODS))
        members.insert(draw(st.integers(0, len(members))), (info, draw(MEMBER_DATA)))
    return zip_bytes(members)


def test_the_unmutated_zip_files_load(sandbox):
    labelled, photos = (check_loader(load_zip, data, ".zip", sandbox) for data in GOOD_ZIPS)
    assert labelled.class_names == ("0", "1") and labelled.images.shape == (16, 8, 8, 1)
    assert photos.labels is None and photos.images.shape == (16, 8, 8, 3)


@FUZZ
@given(st.sampled_from(GOOD_ZIPS).flatmap(mutated))
def test_a_mutated_zip_loads_or_is_one_data_error(sandbox, data):
    check_loader(load_zip, data, ".zip", sandbox)


@FUZZ
@given(zip_files())
def test_a_hostile_zip_loads_or_is_one_data_error(sandbox, data):
    loaded = check_loader(load_zip, data, ".zip", sandbox)
    if loaded is not None:  # anything accepted came only from safe, regular image members
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [info.filename for info in archive.infolist() if not uploads._is_skipped(info)]
        assert all(not name.startswith(("/", "\\")) and ".." not in uploads._parts(name) for name in names)
        assert len(names) == loaded.num_images


# ---------------------------------------------------------------- the dataset dispatcher

PATH_PREFIXES = st.sampled_from(["", "~", "~/", "~no-such-user-x/", "/", "/proc/", "./", "../", "a" * 300 + "/", "a" * 5000, "\x00", "dir\n", "input"])
PATH_SUFFIXES = st.sampled_from([".npz", ".zip", ".NPZ", ".Zip", ".npz/", " .zip", ".npz\x00", ""])
DATASET_NAMES = (st.text(max_size=30) | st.builds(str.__add__, PATH_PREFIXES, PATH_SUFFIXES)).filter(
    lambda name: name.strip().lower() not in BUILTIN_DATASETS
)


@FUZZ
@given(DATASET_NAMES, st.sampled_from(SPLITS) | st.text(max_size=6))
def test_any_dataset_name_or_path_is_an_image_set_or_one_data_error(sandbox, name, split):
    before = listing(sandbox)
    try:
        assert_valid_image_set(load_dataset(name, split))
    except DataError as exc:
        assert_one_sentence(str(exc))
    assert listing(sandbox) == before


@settings(FUZZ, max_examples=40)
@given(st.binary(max_size=300) | st.sampled_from(GOOD_NPZ + GOOD_ZIPS).flatmap(mutated), st.sampled_from([".npz", ".zip", ".NPZ"]))
def test_the_dispatcher_refuses_a_damaged_file_in_one_sentence(sandbox, data, suffix):
    path = sandbox / "work" / f"dataset{suffix}"
    path.write_bytes(data)
    before = listing(sandbox)
    try:
        assert_valid_image_set(load_dataset(str(path)))
    except DataError as exc:
        assert_one_sentence(str(exc))
    assert listing(sandbox) == before


# ---------------------------------------------------------------- deterministic gaps


def rejects(call, *fragments: str) -> str:
    """Assert call() raises one DataError sentence holding every fragment; return the message."""
    with pytest.raises(DataError) as refused:
        call()
    message = str(refused.value)
    assert_one_sentence(message)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_empty_uploads_and_folders_named_like_datasets_are_refused(sandbox):
    rejects(lambda: load_npz(io.BytesIO(b""), "empty.npz"), "'empty.npz' is not a valid .npz file: it is empty (0 bytes).")
    rejects(lambda: load_zip(io.BytesIO(b""), "empty.zip"), "'empty.zip' is not a valid .zip file: it is empty (0 bytes).")
    folder = sandbox / "work" / "folder.npz"
    folder.mkdir(exist_ok=True)
    rejects(lambda: load_npz(folder), "is not a file.")
    rejects(lambda: load_dataset(str(folder)), "is not a file.")
    folder.rmdir()


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("~no-such-user-x/d.npz", "cannot be opened: Could not determine home directory."),
        ("a" * 5000 + ".zip", "cannot be opened: File name too long."),
        ("bad\nname.npz", "Dataset file 'bad\\nname.npz' does not exist."),
        ("bad\u2028name", "Unknown dataset 'bad\\u2028name'"),
    ],
    ids=["unknown-home", "name-too-long", "newline-in-path", "line-separator-in-name"],
)
def test_odd_dataset_paths_are_one_short_sentence(sandbox, name, fragment):
    message = rejects(lambda: load_dataset(name), fragment)
    assert len(message) < 400


def test_a_member_name_with_a_line_break_is_quoted_on_one_line(sandbox):
    data = zip_bytes(CLASS_IMAGES + [("evil\nname.txt", b"x")])
    rejects(lambda: load_zip(io.BytesIO(data), "n.zip"), "member 'evil\\nname.txt' is not a .png, .jpg or .jpeg image.")
    data = npz_bytes(z=np.zeros(3), **{"a\nb": np.zeros(2)})
    rejects(lambda: load_npz(io.BytesIO(data), "n.npz"), "has no array named 'x' (found: a\\nb, z)")


def test_a_jpeg_claiming_billions_of_pixels_is_refused_as_a_bomb(sandbox):
    data = zip_bytes(CLASS_IMAGES + [("zz.jpg", jpeg_claiming(65_000, 65_000))])
    rejects(lambda: load_zip(io.BytesIO(data), "j.zip"), "member 'zz.jpg'", "decompression bomb")
    data = zip_bytes(CLASS_IMAGES + [("zz.jpg", jpeg_claiming(5000, 5000))])
    rejects(lambda: load_zip(io.BytesIO(data), "j.zip"), "member 'zz.jpg' is 5000x5000 pixels", "decompression bomb")


def patch_member_headers(data: bytes, offset: int, value: int) -> bytes:
    """Set a 2-byte field (flags at 6/8, method at 8/10) of every local and central header."""
    out = bytearray(data)
    for signature, at in ((b"PK\x03\x04", offset), (b"PK\x01\x02", offset + 2)):
        start = out.find(signature)
        while start != -1:
            struct.pack_into("<H", out, start + at, value)
            start = out.find(signature, start + 4)
    return bytes(out)


def test_encrypted_and_unknown_compression_members_are_refused(sandbox):
    plain = zip_bytes(CLASS_IMAGES, zipfile.ZIP_STORED)
    encrypted = patch_member_headers(plain, 6, 0x1)
    rejects(lambda: load_zip(io.BytesIO(encrypted), "e.zip"), "member '0/img00.png' is password-protected")
    rejects(lambda: load_npz(io.BytesIO(patch_member_headers(GOOD_NPZ[0], 6, 0x1)), "e.npz"), "'e.npz' is not a valid .npz file")
    unknown = patch_member_headers(plain, 8, 99)
    rejects(lambda: load_zip(io.BytesIO(unknown), "m.zip"), "member '0/img00.png' uses an unsupported compression method")


def test_an_npz_over_the_unpacked_size_cap_is_refused_before_loading(sandbox, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_ZIP_UNCOMPRESSED_BYTES", 1000)
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load ran on an oversized archive"))
    rejects(lambda: load_npz(io.BytesIO(GOOD_NPZ[1]), "big.npz"), "'big.npz' would unpack to ", "more than the 1000 bytes limit.")


# ---------------------------------------------------------------- generator .keras uploads

CODE_EVENTS = {
    "exec", "marshal.loads", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
    "subprocess.Popen", "pickle.find_class",
}
_seen: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _seen is not None and event in CODE_EVENTS:
        _seen.append(event)


@pytest.fixture(scope="module")
def generator_file(sandbox):
    """A tiny trained-shape generator as .keras bytes, loaded once so later loads import nothing new."""
    from gan_core.config import RunConfig
    from gan_core.families import get
    from gan_core.families.base import DataSpec
    from gan_core.generation import model_io

    data = model_io.model_bytes(get("dcgan").generator(RunConfig(width=0.125, latent_dim=8), DataSpec((28, 28, 1), 0)))
    model_io.load_generator_file(data, "warm-up.keras")
    sys.addaudithook(_audit)  # hooks cannot be removed; it records only while _seen is a list
    return data


def check_generator_upload(data: bytes, root: Path):
    """Load an upload: a Keras image generator made only of Keras layers, or one DataError sentence; no code run, nothing left."""
    import keras

    from gan_core.generation import model_io

    global _seen
    before = listing(root)
    _seen = []
    try:
        model = model_io.load_generator_file(data, "upload.keras")
    except DataError as exc:
        assert_one_sentence(str(exc))
        model = None
    finally:
        seen, _seen = _seen, None
    outcome_event("refused" if model is None else "loaded")
    assert seen == [], f"loading ran code: {seen}"
    assert listing(root) == before, "the upload left files behind"
    if model is not None:
        layers = all_layers(model)
        assert all(type(layer).__module__.startswith("keras.") for layer in layers)
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in layers)
    return model


def all_layers(model) -> list:
    """Every layer of a model, nested models' layers included."""
    found = []
    for layer in model.layers:
        found += [layer, *all_layers(layer)] if hasattr(layer, "layers") else [layer]
    return found


def rezip(data: bytes, member: str, content: bytes) -> bytes:
    """data with one member's bytes replaced (stored, with a correct CRC)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, content if info.filename == member else source.read(info))
    return out.getvalue()


MODEL_FUZZ = settings(FUZZ, max_examples=25)


def test_the_audit_hook_hears_code_being_run(generator_file):
    """The hook the upload checks rely on records exec and marshal.loads (the events a Lambda's code would fire)."""
    import marshal

    global _seen
    _seen = []
    try:
        exec("pass")
        marshal.loads(marshal.dumps(compile("pass", "<upload>", "exec")))
    finally:
        seen, _seen = _seen, None
    assert seen == ["exec", "marshal.loads"]


def test_the_unmutated_generator_file_loads(generator_file, sandbox):
    assert check_generator_upload(generator_file, sandbox) is not None


def deflated(data: bytes) -> bytes:
    """The same zip with every member deflate-compressed (Keras itself stores them uncompressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    return out.getvalue()


@MODEL_FUZZ
@given(st.data())
def test_a_truncated_or_mutated_keras_file_loads_or_is_one_data_error(generator_file, sandbox, data):
    base = data.draw(st.sampled_from([generator_file, deflated(generator_file)]))
    check_generator_upload(data.draw(mutated(base)), sandbox)


@MODEL_FUZZ
@given(st.data())
def test_a_keras_file_with_one_mutated_member_loads_or_is_one_data_error(generator_file, sandbox, data):
    with zipfile.ZipFile(io.BytesIO(generator_file)) as archive:
        member = data.draw(st.sampled_from(archive.namelist()))
        content = archive.read(member)
    check_generator_upload(rezip(generator_file, member, data.draw(mutated(content))), sandbox)


SMALL_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 64) | st.floats(-2, 2) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
HOSTILE_JSON = st.fixed_dictionaries(
    {
        "module": st.sampled_from(["os", "builtins", "subprocess", "keras.layers", None]),
        "class_name": st.sampled_from(["Lambda", "TFSMLayer", "TorchModuleWrapper", "Dense", "system"]),
        "config": st.fixed_dictionaries({"function": st.just({"class_name": "__lambda__", "config": {"code": "AA=="}})}),
        "registered_name": st.sampled_from([None, "evil>Shell", "keras.layers>Dense"]),
    }
)


def replace_somewhere(draw, tree):
    """tree with one node, reached by a random walk from the root, replaced by a small or hostile JSON value."""
    replacement = draw(SMALL_JSON | HOSTILE_JSON | st.sampled_from(["Lambda", "os", "evil>Shell", "float16", "relu", [], {}]))
    parent, key, node = None, None, tree
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 9)):
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        parent, node = node, node[key]
    if parent is None:
        return replacement
    parent[key] = replacement
    return tree


@MODEL_FUZZ
@given(st.data())
def test_a_keras_file_with_an_edited_config_loads_or_is_one_data_error(generator_file, sandbox, data):
    import json

    with zipfile.ZipFile(io.BytesIO(generator_file)) as archive:
        config = json.loads(archive.read("config.json"))
    for _ in range(data.draw(st.integers(1, 3))):
        config = replace_somewhere(data.draw, config)
    check_generator_upload(rezip(generator_file, "config.json", json.dumps(config).encode()), sandbox)


def test_a_damaged_deflated_config_is_one_data_error(generator_file, sandbox):
    data = bytearray(deflated(generator_file))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("config.json")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 8 : start + 40] = bytes(32)  # corrupt the deflate stream (zlib.error, not BadZipFile)
    from gan_core.generation import model_io

    with pytest.raises(DataError, match=r"^'d.keras' is not a readable .keras file: its config.json is damaged\.$"):
        model_io.load_generator_file(bytes(data), "d.keras")
