"""A generator of small RGB images with independent factors, for a controlled transfer suite.

Every image shows one filled shape on a noisy grey background. Its factors are drawn
independently: shape (20 kinds, :data:`SHAPES`), colour (10 hues, :data:`COLOURS`), position,
scale, orientation (rotation within +-30 degrees, small enough that no shape turns into
another: the square never becomes the diamond) and background level and noise. The task
decides which factor is the label:

- ``"shape"``: the first ``num_classes`` shapes, ``SHAPES[:num_classes]``; colour random.
- ``"new_shape"``: the LAST ``num_classes`` shapes, ``SHAPES[-num_classes:]``; colour random.
  With at most 10 classes per task and 20 shapes, these never overlap the ``"shape"``
  classes, whatever the two class counts: a *near* target for a model pre-trained on
  ``"shape"``.
- ``"colour"``: the first ``num_classes`` colours, ``COLOURS[:num_classes]``; shape random
  among all 20: a *far* target for a model made colour-blind by augmentation.
- ``"shape_colour"``: shape AND colour: class ``c`` is the new shape ``c // 2`` (from the
  last shapes, as in ``"new_shape"``) in colour ``c % 2``. Half of the label is what a
  shape-trained source sees and half what a colour-blind one cannot: a *partly related*
  target.

The colour mode decides how a shape is painted (:data:`COLOUR_MODES`):

- ``"hue"``: the hue with random saturation and value. Brightness then differs between
  hues (yellow is brighter than blue), so a model that sees only brightness still learns a
  little about colour.
- ``"isoluminant"``: the hue as a chroma offset around a random brightness (the channel mean
  ``(R + G + B) / 3``), drawn independently of the hue: a brightness-only model is blind to
  the colour label.
- ``"grey"``: the same random brightness with no chroma (R = G = B): a source that never
  sees colour (e.g. the controlled transfer suite's pre-training data).

Output is deterministic given the seed. Shapes are drawn with PIL at twice the size and
reduced, which anti-aliases edges at little cost.
"""

from __future__ import annotations

import colorsys
import math
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

from nonbinary_ft.config import DataConfig
from nonbinary_ft.data.dataset import Sample, SampleSplits
from nonbinary_ft.data.splits import stratified_holdout

__all__ = [
    "SHAPES",
    "COLOURS",
    "TASKS",
    "COLOUR_MODES",
    "MAX_CLASSES",
    "generate_images",
    "class_names",
    "task_shapes",
    "read_synthetic",
]

Task = Literal["shape", "new_shape", "colour"]
TASKS: tuple[str, ...] = ("shape", "new_shape", "colour", "shape_colour")
COLOUR_MODES: tuple[str, ...] = ("hue", "isoluminant", "grey")

# A polygon in unit coordinates (x right, y down, extent about [-1, 1]) and whether it is a
# hole, painted with the background colour (rings, frames, crescents).
Part = tuple[list[tuple[float, float]], bool]


def _regular(sides: int, radius: float = 1.0, ry: float | None = None) -> list[tuple[float, float]]:
    # Start at the top so triangles and pentagons point up before rotation.
    ry = radius if ry is None else ry
    angles = [-math.pi / 2 + 2 * math.pi * i / sides for i in range(sides)]
    return [(radius * math.cos(a), ry * math.sin(a)) for a in angles]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star(points: int = 5, inner: float = 0.42) -> list[tuple[float, float]]:
    outer = _regular(2 * points)
    return [
        (x * (1 if i % 2 == 0 else inner), y * (1 if i % 2 == 0 else inner))
        for i, (x, y) in enumerate(outer)
    ]


def _semicircle() -> list[tuple[float, float]]:
    # A dome; shifted so that its centroid (4/(3 pi) above the flat side) sits near 0.
    return [(math.cos(t), 0.42 - math.sin(t)) for t in np.linspace(0, math.pi, 17)]


# Two groups of ten: the first are the 'shape' classes, the last the 'new_shape' classes
# (taken from the end, so the most distinct ones are last).
_GEOMETRY: dict[str, list[Part]] = {
    "circle": [(_regular(32, 0.9), False)],
    "square": [(_rect(-0.8, -0.8, 0.8, 0.8), False)],
    "triangle": [(_regular(3), False)],
    "cross": [(_rect(-1, -0.3, 1, 0.3), False), (_rect(-0.3, -1, 0.3, 1), False)],
    "star": [(_star(), False)],
    "ring": [(_regular(32), False), (_regular(32, 0.55), True)],
    "diamond": [([(0, -1), (0.6, 0), (0, 1), (-0.6, 0)], False)],
    "hexagon": [(_regular(6), False)],
    "bar": [(_rect(-0.28, -1, 0.28, 1), False)],
    "semicircle": [(_semicircle(), False)],
    "pentagon": [(_regular(5), False)],
    "trapezoid": [([(-0.5, -0.6), (0.5, -0.6), (1, 0.6), (-1, 0.6)], False)],
    "ellipse": [(_regular(32, 1.0, 0.5), False)],
    "crescent": [
        (_regular(32), False),
        ([(x + 0.45, y - 0.1) for x, y in _regular(32, 0.8)], True),
    ],
    "hourglass": [([(-0.8, -1), (0.8, -1), (0.12, 0), (0.8, 1), (-0.8, 1), (-0.12, 0)], False)],
    "chevron": [([(-1, -0.6), (-0.55, -0.6), (0, 0.2), (0.55, -0.6), (1, -0.6), (0, 0.8)], False)],
    "frame": [(_rect(-0.9, -0.9, 0.9, 0.9), False), (_rect(-0.5, -0.5, 0.5, 0.5), True)],
    "t_shape": [
        (
            [
                (-1, -1),
                (1, -1),
                (1, -0.5),
                (0.25, -0.5),
                (0.25, 1),
                (-0.25, 1),
                (-0.25, -0.5),
                (-1, -0.5),
            ],
            False,
        )
    ],
    "l_shape": [([(-0.7, -1), (-0.2, -1), (-0.2, 0.5), (0.7, 0.5), (0.7, 1), (-0.7, 1)], False)],
    "arrow": [
        (
            [(-1, -0.2), (0.2, -0.2), (0.2, -0.55), (1, 0), (0.2, 0.55), (0.2, 0.2), (-1, 0.2)],
            False,
        )
    ],
}

SHAPES: tuple[str, ...] = tuple(_GEOMETRY)
"""The 20 shape names, in class order."""

# Hues ordered so that the first few are far apart (a 4-class colour task gets red, cyan,
# yellow, blue); all ten are at least 30 degrees apart.
COLOURS: tuple[tuple[str, float], ...] = (
    ("red", 0.0),
    ("cyan", 180.0),
    ("yellow", 60.0),
    ("blue", 240.0),
    ("green", 120.0),
    ("magenta", 300.0),
    ("orange", 30.0),
    ("azure", 210.0),
    ("chartreuse", 90.0),
    ("violet", 270.0),
)
"""The 10 colours as (name, hue in degrees), in class order."""

MAX_CLASSES = min(len(SHAPES) // 2, len(COLOURS))

_MAX_ROTATION = 30.0  # degrees; beyond 45 a square would look like the diamond
_HUE_JITTER = 5.0  # degrees; well below the 30-degree spacing of COLOURS
_NOISE_STD = 8.0  # grey levels of per-pixel background noise
_SUPERSAMPLE = 2
# Shape brightness (channel mean, as a fraction of 255) in the isoluminant and grey modes:
# always above the background's 30..110 grey levels, so the shape stays visible in grey.
_BRIGHTNESS = (0.55, 0.7)


def task_shapes(task: str, num_classes: int) -> tuple[str, ...]:
    """Shapes a task draws from: the label's shapes, or all 20 for ``"colour"``."""
    if task == "shape":
        return SHAPES[:num_classes]
    if task == "new_shape":
        return SHAPES[-num_classes:]
    if task == "shape_colour":
        return SHAPES[-((num_classes + 1) // 2) :]
    return SHAPES


def class_names(task: str, num_classes: int) -> tuple[str, ...]:
    """Class names of a task: shape names, or colour names for ``"colour"``.

    Raises:
        ValueError: an unknown task or a class count outside [2, MAX_CLASSES].
    """
    _check(task, num_classes, 1, 8)
    if task == "colour":
        return tuple(name for name, _ in COLOURS[:num_classes])
    if task == "shape_colour":
        shapes = task_shapes(task, num_classes)
        return tuple(f"{shapes[c // 2]} {COLOURS[c % 2][0]}" for c in range(num_classes))
    return task_shapes(task, num_classes)


def _check(
    task: str, num_classes: int, samples_per_class: int, image_size: int, colour_mode: str = "hue"
) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)} but got {task!r}")
    if colour_mode not in COLOUR_MODES:
        raise ValueError(
            f"colour_mode must be one of {', '.join(COLOUR_MODES)} but got {colour_mode!r}"
        )
    if task in ("colour", "shape_colour") and colour_mode == "grey":
        raise ValueError(
            f"colour_mode must be 'hue' or 'isoluminant' for task '{task}' but got "
            "'grey' (grey shapes carry no colour label)"
        )
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f"num_classes must be between 2 and {MAX_CLASSES} inclusive but got {num_classes}"
        )
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be at least 1 but got {samples_per_class}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 but got {image_size}")


def _colour(rng: np.random.Generator, hue: float, mode: str = "hue") -> tuple[int, int, int]:
    # Three draws in every mode, so that the mode never shifts the other factors' streams.
    hue = (hue + rng.uniform(-_HUE_JITTER, _HUE_JITTER)) % 360.0
    first, second = rng.uniform(0.75, 1.0), rng.uniform(0.75, 1.0)
    if mode == "hue":
        rgb = np.array(colorsys.hsv_to_rgb(hue / 360.0, first, second))
    else:
        low, high = _BRIGHTNESS
        brightness = low + (high - low) * (second - 0.75) / 0.25
        pure = np.array(colorsys.hsv_to_rgb(hue / 360.0, 1.0, 1.0))
        # A pure hue's channels lie within 2/3 of their mean, so this chroma scale keeps
        # every channel inside [0, 1] around any brightness in _BRIGHTNESS.
        chroma = 0.0 if mode == "grey" else 1.5 * first * min(brightness, 1 - brightness)
        rgb = brightness + chroma * (pure - pure.mean())
    return (round(rgb[0] * 255), round(rgb[1] * 255), round(rgb[2] * 255))


def _draw(
    shape: str, colour: tuple[int, int, int], size: int, rng: np.random.Generator
) -> Image.Image:
    """One image: the shape at a random scale, rotation and position on a noisy background."""
    # Draw every random number in a fixed order, whatever the shape, so that a factor's
    # value never shifts the others' streams.
    half = rng.uniform(0.26, 0.40) * size  # half-extent of the shape in pixels
    angle = math.radians(rng.uniform(-_MAX_ROTATION, _MAX_ROTATION))
    margin = size / 2 - half
    cx, cy = size / 2 + rng.uniform(-0.6, 0.6, size=2) * margin
    grey = int(rng.uniform(30, 110))
    noise = rng.normal(0.0, _NOISE_STD, size=(size, size, 1))

    s = _SUPERSAMPLE
    cos, sin = math.cos(angle), math.sin(angle)
    canvas = Image.new("RGB", (size * s, size * s), (grey, grey, grey))
    pen = ImageDraw.Draw(canvas)
    for points, hole in _GEOMETRY[shape]:
        xy = [
            ((cx + half * (x * cos - y * sin)) * s, (cy + half * (x * sin + y * cos)) * s)
            for x, y in points
        ]
        pen.polygon(xy, fill=(grey, grey, grey) if hole else colour)
    # Grey noise (equal in all channels) adds texture without changing any hue.
    pixels = np.asarray(canvas.reduce(s), dtype=np.float64) + noise
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def generate_images(
    task: str,
    num_classes: int,
    samples_per_class: int,
    image_size: int,
    seed: int,
    colour_mode: str = "hue",
) -> tuple[list[Image.Image], np.ndarray]:
    """Generate a labelled image set whose label is one factor of the generator.

    See the module docstring for what each task labels. Images come class by class.

    Args:
        task: ``"shape"``, ``"new_shape"``, ``"colour"`` or ``"shape_colour"``.
        num_classes: number of classes, 2 to :data:`MAX_CLASSES`.
        samples_per_class: images per class.
        image_size: side of the square RGB images, at least 8.
        seed: seed of every random factor; equal seeds give identical images.
        colour_mode: ``"hue"``, ``"isoluminant"`` or ``"grey"`` (see the module docstring).

    Returns:
        ``(images, labels)``: PIL RGB images and an int64 array of class indices.

    Raises:
        ValueError: an unknown task or colour mode, an out-of-range count or size, or the
            ``"colour"`` or ``"shape_colour"`` task in ``"grey"``.
    """
    _check(task, num_classes, samples_per_class, image_size, colour_mode)
    rng = np.random.default_rng(seed)
    shapes = task_shapes(task, num_classes)
    images: list[Image.Image] = []
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), samples_per_class)
    for label in labels:
        # The non-label factor is drawn even when unused, again to keep streams aligned.
        other = int(rng.integers(len(shapes) if task == "colour" else len(COLOURS)))
        if task == "colour":
            shape, hue = shapes[other], COLOURS[label][1]
        elif task == "shape_colour":
            shape, hue = shapes[label // 2], COLOURS[label % 2][1]
        else:
            shape, hue = shapes[label], COLOURS[other][1]
        images.append(_draw(shape, _colour(rng, hue, colour_mode), image_size, rng))
    return images, labels


def read_synthetic(cfg: DataConfig) -> SampleSplits:
    """Generate ``cfg.synthetic`` and split it per class with the val/test fractions.

    Args:
        cfg: the data section; uses ``synthetic``, ``val_fraction``, ``test_fraction`` and
            ``split_seed``.

    Raises:
        ValueError: the generator settings are out of range (the config forbids this).
    """
    syn = cfg.synthetic
    images, labels = generate_images(
        syn.task, syn.num_classes, syn.samples_per_class, syn.image_size, syn.seed, syn.colour_mode
    )
    samples: list[Sample] = [
        (image, int(label)) for image, label in zip(images, labels, strict=True)
    ]
    train, val, test = stratified_holdout(
        samples, [cfg.val_fraction, cfg.test_fraction], cfg.split_seed
    )
    return SampleSplits(
        train=train, val=val, test=test, classes=class_names(syn.task, syn.num_classes)
    )
