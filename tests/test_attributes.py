"""Attribute measures (stroke thickness, slant, size) on hand-drawn images whose answer is known."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gan_core.generation.attributes import ATTRIBUTES, measure


def line(start, end, width=2, side=28, channels=1) -> np.ndarray:
    """A white line on black, (1, side, side, channels) uint8."""
    image = Image.new("L", (side, side))
    ImageDraw.Draw(image).line([start, end], fill=255, width=width)
    pixels = np.asarray(image)[None, ..., None]
    return np.repeat(pixels, channels, axis=-1)


def measured(*images) -> dict[str, np.ndarray]:
    return measure(np.concatenate(images))


def test_a_thicker_stroke_measures_thicker_and_about_its_width():
    found = measured(*(line((14, 4), (14, 23), width) for width in (1, 2, 4, 6)))["thickness"]
    assert list(found) == sorted(found) and len(set(found)) == 4
    np.testing.assert_allclose(found, [1, 2, 4, 6], rtol=0.25)


def test_slant_is_positive_for_a_top_leaning_right_negative_for_left_and_zero_upright():
    right, left, upright = measured(line((10, 24), (18, 4)), line((18, 24), (10, 4)), line((14, 24), (14, 4)))["slant"]
    assert right > 15 and left < -15 and abs(upright) < 1
    assert right == pytest.approx(-left, abs=1)
    assert right == pytest.approx(np.degrees(np.arctan(8 / 20)), abs=4)  # 8 px across over 20 px down


def test_size_grows_with_the_digit_and_is_about_a_lines_length():
    short, long, diagonal = measured(line((14, 10), (14, 17)), line((14, 2), (14, 25)), line((4, 4), (23, 23)))["size"]
    assert short < long
    assert long == pytest.approx(24, rel=0.1)
    assert diagonal == pytest.approx(np.hypot(20, 20), rel=0.1)


def test_thickness_does_not_follow_size_nor_slant():
    thin = measured(line((14, 10), (14, 17), 2), line((14, 2), (14, 25), 2), line((8, 25), (20, 2), 2))["thickness"]
    thick = measured(line((14, 10), (14, 17), 5), line((14, 2), (14, 25), 5), line((8, 25), (20, 2), 5))["thickness"]
    assert thick.min() > thin.max()


def test_colour_images_measure_as_their_grey_and_an_empty_image_measures_nan():
    grey, colour = measured(line((10, 24), (18, 4), 3)), measured(line((10, 24), (18, 4), 3, channels=3))
    for name in ATTRIBUTES:
        assert grey[name] == pytest.approx(colour[name])
    empty = measure(np.zeros((1, 28, 28, 1), np.uint8))
    assert all(np.isnan(empty[name][0]) for name in ATTRIBUTES)
