"""Image families for the replay tables that no reader ships: written once as image folders.

Each family is a small classification task drawn from real or rendered images, so that the
replay's history spans more kinds of target than generated shapes and digits:

- ``letters``: the letters A to F rendered in the machine's DejaVu fonts (sans, serif, mono,
  bold, oblique) at random sizes, angles, positions and colours on a noisy background;
- ``patches``: 32 px crops of scikit-learn's two sample photographs, the class being which
  quarter of which photograph a crop comes from (natural textures and colours);
- ``textures``: stripes, checks, dots, rings, zig-zags and noise blobs at random scales,
  orientations and colours.

Images are written as ``<root>/<family>/train/<class>/<index>.png`` (an image folder with a
training split only: validation and test are held out of it by the task's fractions). The
output depends on the seed only, and a family already written is left as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["FAMILIES", "IMAGE_SIZE", "write_family"]

IMAGE_SIZE = 32
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = (
    "DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSans-Oblique.ttf",
)  # fmt: skip
LETTERS = "ABCDEF"


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    level = rng.uniform(60, 200)
    noise = rng.normal(level, rng.uniform(4, 20), (size, size, 3)).clip(0, 255)
    return Image.fromarray(noise.astype(np.uint8))


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _letter(label: int, rng: np.random.Generator) -> Image.Image:
    big = 2 * IMAGE_SIZE
    font_file = FONT_DIR / FONTS[int(rng.integers(len(FONTS)))]
    font = ImageFont.truetype(str(font_file), int(rng.integers(26, 44)))
    glyph = Image.new("L", (big, big), 0)
    ImageDraw.Draw(glyph).text((big / 2, big / 2), LETTERS[label], fill=255, font=font, anchor="mm")
    glyph = glyph.rotate(rng.uniform(-25, 25), resample=Image.BILINEAR)
    shift = rng.integers(-8, 9, 2)
    glyph = glyph.transform(glyph.size, Image.AFFINE, (1, 0, shift[0], 0, 1, shift[1]))
    image = _background(rng, big)
    image.paste(Image.new("RGB", (big, big), _colour(rng)), mask=glyph)
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)


def _photo_quarters() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images

    quarters = []
    for photo in load_sample_images().images:
        height, width = photo.shape[0] // 2, photo.shape[1] // 2
        for row in range(2):
            for col in range(2):
                quarters.append(
                    photo[row * height : (row + 1) * height, col * width : (col + 1) * width]
                )
    return quarters


def _patch(label: int, rng: np.random.Generator, quarters: list[np.ndarray]) -> Image.Image:
    quarter = quarters[label]
    side = int(rng.integers(32, 72))
    top = int(rng.integers(0, quarter.shape[0] - side))
    left = int(rng.integers(0, quarter.shape[1] - side))
    crop = Image.fromarray(quarter[top : top + side, left : left + side])
    return crop.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)


def _texture(label: int, rng: np.random.Generator) -> Image.Image:
    size = 2 * IMAGE_SIZE
    y, x = np.mgrid[0:size, 0:size].astype(float)
    angle = rng.uniform(0, math.pi)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    period = rng.uniform(6, 14)
    phase = rng.uniform(0, period)
    if label == 0:  # stripes
        mask = np.sin(2 * math.pi * (u + phase) / period) > 0
    elif label == 1:  # checks
        mask = (np.floor((u + phase) / period) + np.floor(v / period)) % 2 == 0
    elif label == 2:  # dots
        cu, cv = (u + phase) % period - period / 2, v % period - period / 2
        mask = cu**2 + cv**2 < (period / 3.5) ** 2
    elif label == 3:  # rings
        cx, cy = rng.uniform(0, size, 2)
        mask = np.sin(2 * math.pi * np.hypot(x - cx, y - cy) / period) > 0
    elif label == 4:  # zig-zags
        mask = np.sin(2 * math.pi * (u + period / 2 * np.abs(((v / period) % 2) - 1)) / period) > 0
    else:  # noise blobs
        coarse = rng.normal(0, 1, (6, 6))
        field = np.array(
            Image.fromarray(coarse.astype(np.float32)).resize((size, size), Image.BICUBIC)
        )
        mask = field > 0
    front, back = np.array(_colour(rng)), np.array(_colour(rng))
    pixels = np.where(mask[..., None], front, back) + rng.normal(0, 8, (size, size, 3))
    image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)


def _maker(family: str) -> tuple[int, Callable[[int, np.random.Generator], Image.Image]]:
    if family == "letters":
        return len(LETTERS), _letter
    if family == "patches":
        quarters = _photo_quarters()
        return len(quarters), lambda label, rng: _patch(label, rng, quarters)
    return 6, _texture


FAMILIES = ("letters", "patches", "textures")


def write_family(family: str, root: Path, per_class: int, seed: int = 0) -> Path:
    """Write ``per_class`` images of each class of ``family`` under ``root/family``.

    Returns:
        The family's image folder.
    """
    folder = root / family
    done = folder / ".complete"
    if done.is_file():
        return folder
    classes, make = _maker(family)
    for label in range(classes):
        rng = np.random.default_rng([seed, label])
        class_folder = folder / "train" / f"class_{label}"
        class_folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            make(label, rng).save(class_folder / f"{index:04d}.png")
    done.write_text(f"{classes} classes x {per_class}\n")
    return folder
