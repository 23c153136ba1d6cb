"""Fitting a picture to a generator's frame without distortion: the size to render at and the crop.

Wan2.2's own TI2V code picks the output size from the start image (its aspect ratio at the
model's pixel area, each side a multiple of the model's block) and then resizes the image to
cover that size and crops the centre; diffusers' `WanImageToVideoPipeline` instead resizes the
image to whatever size it is given, which stretches a 4:3 or portrait reference. Both the
generator's start image and the training frames go through `cover_crop`, so what a model is
conditioned on and what it was trained on are framed the same way.
"""

from __future__ import annotations

import math

from PIL import Image

from ..errors import InputError

MAX_ASPECT = 8.0  # wider or taller than 8:1 cannot keep its framing inside the model's block grid


def size_for_image(image_width: int, image_height: int, area: int, multiple: int, max_side: int) -> tuple[int, int]:
    """(width, height) with the image's aspect ratio at about `area` pixels: both sides multiples
    of `multiple`, neither above `max_side`, the area never above `area`. Of the two ways to round
    (width first, or height first) the one whose aspect is closer to the image's wins."""
    if image_width <= 0 or image_height <= 0:
        raise InputError(f"has no pixels ({image_width}x{image_height})", "image")
    ratio = image_width / image_height
    if not 1 / MAX_ASPECT <= ratio <= MAX_ASPECT:
        raise InputError(f"is {image_width}x{image_height}, an aspect ratio beyond {MAX_ASPECT:g}:1; crop it "
                         "closer to the video's shape first", "image")
    ideal_width, ideal_height = math.sqrt(area * ratio), math.sqrt(area / ratio)
    width_first = _floor_to(min(ideal_width, max_side), multiple)
    height_first = _floor_to(min(ideal_height, max_side), multiple)
    candidates = [(width_first, _floor_to(min(area / width_first, max_side), multiple)),
                  (_floor_to(min(area / height_first, max_side), multiple), height_first)]

    def distortion(size: tuple[int, int]) -> float:
        aspect = size[0] / size[1]
        return max(ratio / aspect, aspect / ratio)

    return min(candidates, key=lambda size: (distortion(size), -size[0] * size[1]))


def cover_crop(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` scaled (bicubic) to cover width x height, then cropped to it around the centre: no
    stretch, no letterbox. An image already of that size is returned as it is."""
    image = image.convert("RGB")
    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    resized = image.resize(size, Image.Resampling.BICUBIC)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _floor_to(value: float, multiple: int) -> int:
    return max(multiple, int(value // multiple) * multiple)
