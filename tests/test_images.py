"""Sample grids and PNG encoding."""

import io

import numpy as np
from PIL import Image

from gan_core.data.images import encode_png, make_grid, save_png, to_uint8


def test_to_uint8_maps_the_tanh_range_and_clips():
    out = to_uint8(np.array([-1.0, 0.0, 1.0, 3.0, -7.0]))
    assert out.dtype == np.uint8 and out.tolist() == [0, 128, 255, 255, 0]


def test_grid_places_each_image_in_its_cell():
    images = np.stack([np.full((4, 4, 1), i * 10, np.uint8) for i in range(6)])
    grid = make_grid(images, cols=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 1)
    assert grid[1, 1, 0] == 0 and grid[1, 6, 0] == 10 and grid[6, 11, 0] == 50
    assert grid[0, 0, 0] == 0, "padding stays dark"


def test_grid_defaults_to_about_a_square():
    grid = make_grid(np.zeros((10, 28, 28, 3), np.uint8), pad=0)
    assert grid.shape == (3 * 28, 4 * 28, 3)


def test_png_round_trips_grey_and_colour_with_scaling(tmp_path):
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 16
    picture = Image.open(io.BytesIO(encode_png(grey, scale=3)))
    assert picture.size == (12, 12) and picture.mode == "L"
    assert np.asarray(picture)[0:3, 0:3].max() == 0 and np.asarray(picture)[-1, -1] == 240
    colour = np.zeros((5, 6, 3), np.uint8)
    colour[..., 0] = 200
    path = save_png(tmp_path / "c.png", colour)
    assert np.asarray(Image.open(path))[0, 0].tolist() == [200, 0, 0]
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]
