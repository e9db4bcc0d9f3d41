"""dlib's image resizing and image pyramids, bit for bit, in numpy: the input side of the MMOD detector port.

dlib's CNN face detector (``cnn_face_detection_model_v1``) does not see the image itself: with ``upsample`` n it
first doubles the image n times (``pyramid_up`` with ``pyramid_down<2>``), then its input layer
(``input_rgb_image_pyramid<pyramid_down<6>>``) packs the image and its successive 5/6 reductions into one tiled
image, 10 px apart, which the network scans at once. Every resize is dlib's RGB bilinear ``resize_image``
(``dlib/image_transforms/interpolation.h``), which maps corner to corner (``x_in = x_out * (in - 1) / (out - 1)``),
computes columns four at a time in float32 with the column position accumulated in float32, and truncates; the
last columns, where a group of four would read past the edge, are computed in double and truncated. This module
reproduces that arithmetic, so its images equal dlib's exactly (tests compare with ``dlib.resize_image`` and
``dlib.pyramid_down(6)``).

Rectangles are dlib's: (left, top, right, bottom), inclusive integer pixel coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Rect = tuple[int, int, int, int]

PYRAMID_RATE = (6 - 1.0) / 6  # pyramid_down<6>: each level is 5/6 of the one before
UP_RATIO = 6 / (6 - 1.0)       # and a level's points map up by p * 6/5 + 0.3
TILE_PADDING = 10         # pixels between pyramid levels in the tiled image
OUTER_PADDING = 11        # pixels of border around the tiled image (the defaults dlib gives a file without them)
MIN_LEVEL_HEIGHT = 5      # smaller levels are not added


@dataclass(frozen=True)
class _Plan:
    """Where each output pixel of dlib's bilinear ``resize_image`` reads, and with which weights.

    Columns ``[:n]`` are dlib's four-at-a-time float32 loop: ``left`` and float32 ``frac`` (the column position is
    accumulated in float32 and truncated); columns ``[n:]`` its double-precision tail (``tail_left``,
    ``tail_right``, ``tail_x``). Rows: ``top``, ``bottom`` and the double ``tb`` (accumulated in double).
    """

    top: np.ndarray
    bottom: np.ndarray
    tb: np.ndarray
    left: np.ndarray
    frac: np.ndarray
    tail_left: np.ndarray
    tail_right: np.ndarray
    tail_x: np.ndarray

    @property
    def n(self) -> int:
        return self.left.size


def _plan(in_rows: int, in_cols: int, rows: int, cols: int) -> _Plan:
    x_scale = (in_cols - 1) / max(cols - 1, 1)
    y_scale = (in_rows - 1) / max(rows - 1, 1)
    y = np.cumsum(np.concatenate([[-y_scale], np.full(rows, y_scale)]))[1:]  # sequential double adds
    top = np.floor(y).astype(np.int64)
    n_groups = cols // 4 + 2
    start = -4 * x_scale
    steps = np.empty((n_groups, 4), dtype=np.float32)
    steps[0] = np.array([start, start + x_scale, start + 2 * x_scale, start + 3 * x_scale], dtype=np.float32)
    steps[0] += np.float32(4 * x_scale)
    steps[1:] = np.float32(4 * x_scale)
    positions = np.cumsum(steps, axis=0, dtype=np.float32)  # sequential float32 adds, as the SIMD loop
    lefts = np.trunc(positions).astype(np.int64)
    groups = int(np.nonzero(lefts[:, 3] + 1 >= in_cols)[0][0])  # the first group reading past the edge stops it
    left, positions = lefts[:groups].reshape(-1), positions[:groups].reshape(-1)
    n = left.size
    x = np.cumsum(np.concatenate([[-x_scale + n * x_scale], np.full(cols - n, x_scale)]))[1:]
    tail_left = np.floor(x).astype(np.int64)
    return _Plan(top, np.minimum(top + 1, in_rows - 1), y - top, left,
                 (positions - left.astype(np.float32)).astype(np.float32),
                 tail_left, np.minimum(tail_left + 1, in_cols - 1), x)


def _simd_part(source: np.ndarray, plan: _Plan) -> np.ndarray:
    """float32 ((tl w + tr w) + bl w) + br w of the four-at-a-time columns; source (H, W, C) float32."""
    tbf = plan.tb.astype(np.float32)[:, None, None]
    inv_tbf = (1 - plan.tb).astype(np.float32)[:, None, None]
    lr, inv_lr = plan.frac[None, :, None], (np.float32(1) - plan.frac)[None, :, None]
    upper, lower = source[plan.top], source[plan.bottom]
    value = (inv_tbf * inv_lr) * upper[:, plan.left] + (inv_tbf * lr) * upper[:, plan.left + 1]
    value += (tbf * inv_lr) * lower[:, plan.left]
    value += (tbf * lr) * lower[:, plan.left + 1]
    return value


def resize_rgb(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's ``resize_image`` (bilinear) of an (H, W, 3) uint8 RGB image to (rows, cols, 3) uint8, bit for bit.

    Values are truncated; the tail columns are computed in double.
    """
    plan = _plan(image.shape[0], image.shape[1], rows, cols)
    out = np.empty((rows, cols, 3), dtype=np.uint8)
    n = plan.n
    if n:
        out[:, :n] = np.trunc(_simd_part(image.astype(np.float32), plan)).astype(np.uint8)
    if n < cols:
        pixels = image.astype(np.float64)
        lr = (plan.tail_x - plan.tail_left)[None, :, None]
        tb = plan.tb[:, None, None]
        upper, lower = pixels[plan.top], pixels[plan.bottom]
        value = (1 - tb) * ((1 - lr) * upper[:, plan.tail_left] + lr * upper[:, plan.tail_right]) + \
            tb * ((1 - lr) * lower[:, plan.tail_left] + lr * lower[:, plan.tail_right])
        out[:, n:] = np.trunc(value).astype(np.uint8)
    return out


def resize_float(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's ``resize_image`` (bilinear) of each channel of an (H, W, C) float32 image, bit for bit.

    The grayscale float path: tail columns use a float32 column fraction, float32 horizontal mixes and a double
    vertical mix, rounded to float32.
    """
    plan = _plan(image.shape[0], image.shape[1], rows, cols)
    out = np.empty((rows, cols, image.shape[2]), dtype=np.float32)
    n = plan.n
    if n:
        out[:, :n] = _simd_part(image, plan)
    if n < cols:
        lr = (plan.tail_x - plan.tail_left).astype(np.float32)[None, :, None]
        inv_lr = np.float32(1) - lr
        tb = plan.tb[:, None, None]
        upper, lower = image[plan.top], image[plan.bottom]
        upper_mix = inv_lr * upper[:, plan.tail_left] + lr * upper[:, plan.tail_right]
        lower_mix = inv_lr * lower[:, plan.tail_left] + lr * lower[:, plan.tail_right]
        out[:, n:] = ((1 - tb) * upper_mix.astype(np.float64) + tb * lower_mix.astype(np.float64)).astype(np.float32)
    return out


def pyramid_up(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_up(img, pyramid_down<2>)``: (H, W, 3) -> (2H + 1, 2W + 2, 3), bilinear.

    The size is dlib's ``rect_up`` of the image rectangle, point_up(p) = 2 (p + (1.25, 0.75)), rounded.
    """
    rows, cols = image.shape[:2]
    return resize_rgb(image, math.floor(2 * (rows - 1 + 0.75) + 0.5) + 1, math.floor(2 * (cols - 1 + 1.25) + 0.5) + 1)


def rect_down_2(rect: tuple[float, float, float, float], levels: int) -> Rect:
    """Map a rectangle found on an image upsampled ``levels`` times back (``pyramid_down<2>::rect_down``), rounded."""
    left, top, right, bottom = rect
    for _ in range(levels):
        left, right = left / 2.0 - 1.25, right / 2.0 - 1.25
        top, bottom = top / 2.0 - 0.75, bottom / 2.0 - 0.75
    return round_rect((left, top, right, bottom))


def round_rect(rect: tuple[float, float, float, float]) -> Rect:
    """drectangle -> rectangle as dlib converts it: floor(v + 0.5) per side."""
    return tuple(math.floor(v + 0.5) for v in rect)  # type: ignore[return-value]


def pyramid_levels(rows: int, cols: int) -> list[tuple[int, int]]:
    """(rows, cols) of each pyramid level, the image first; levels stop below 5 rows."""
    levels = [(rows, cols)]
    while True:
        rows, cols = math.floor(PYRAMID_RATE * rows), math.floor(PYRAMID_RATE * cols)
        if rows * cols == 0 or rows < MIN_LEVEL_HEIGHT:
            return levels
        levels.append((rows, cols))


def tile_layout(rows: int, cols: int, padding: int = TILE_PADDING,
                outer: int = OUTER_PADDING) -> tuple[list[Rect], tuple[int, int]]:
    """Where each pyramid level goes in the tiled image, and the tiled image's (rows, cols).

    dlib's ``compute_tiled_image_pyramid_details``: levels go down the left column, ``padding`` px apart, until the
    next level fits beside them; the rest go up the right side from the bottom while they do not overlap the image
    itself (levels that do not fit are dropped); ``outer`` px of border all round.
    """
    sizes = pyramid_levels(rows, cols)
    first_h, first_w = sizes[0]
    total_height = sum(h + padding for h, _ in sizes) - 2 * padding
    height, prev_width = 0, 0
    for h, w in sizes:
        if w <= first_w - prev_width - padding and (height - first_h) * 2 >= total_height - first_h:
            break
        height += h + padding
        prev_width = w
    height -= padding
    rects: list[Rect] = []
    y, i = outer, 0
    while y < height + outer and i < len(sizes):
        h, w = sizes[i]
        rects.append((outer, y, outer + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    while i < len(sizes):
        h, w = sizes[i]
        right, bottom = outer + first_w - 1, y - 1
        rect = (right - (w - 1), bottom - (h - 1), right, bottom)
        if _intersects(rects[0], rect):
            break
        rects.append(rect)
        y -= h + padding
        i += 1
    return rects, (height + 2 * outer, first_w + 2 * outer)


def _intersects(a: Rect, b: Rect) -> bool:
    return max(a[0], b[0]) <= min(a[2], b[2]) and max(a[1], b[1]) <= min(a[3], b[3])


def tiled_pyramid(image: np.ndarray) -> tuple[np.ndarray, list[Rect]]:
    """The detector's input tensor: an (H, W, C) float32 image and its 5/6 reductions tiled on zeros.

    As dlib's ``input_rgb_image_pyramid::to_tensor``: the (already normalised) image goes at the first rectangle,
    and each further level is :func:`resize_float` of the level before. Returns the tiled (rows, cols, C) float32
    image and each level's rectangle in it.
    """
    rects, (rows, cols) = tile_layout(*image.shape[:2])
    tiled = np.zeros((rows, cols, image.shape[2]), dtype=np.float32)
    previous = image
    for i, (left, top, right, bottom) in enumerate(rects):
        level = image if i == 0 else resize_float(previous, bottom - top + 1, right - left + 1)
        tiled[top:bottom + 1, left:right + 1] = level
        previous = level
    return tiled, rects


def nearest_rect(rects: list[Rect], x: int, y: int) -> int:
    """Index of the first rectangle containing (x, y), else of the nearest one (dlib's ``nearest_rect``)."""
    best, best_distance = 0, math.inf
    for i, (left, top, right, bottom) in enumerate(rects):
        if left <= x <= right and top <= y <= bottom:
            return i
        distance = math.hypot(min(max(x, left), right) - x, min(max(y, top), bottom) - y)
        if distance < best_distance:
            best, best_distance = i, distance
    return best


def tiled_to_image(rects: list[Rect], box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box in the tiled image -> the same box in the image (``tiled_pyramid_to_image``): found on the level whose
    rectangle is nearest its centre, scaled up by 6/5 (p -> 6/5 p + 0.3) once per level."""
    left, top, right, bottom = box
    level = nearest_rect(rects, math.floor((left + right) / 2 + 0.5), math.floor((top + bottom) / 2 + 0.5))
    origin_x, origin_y = rects[level][0], rects[level][1]
    left, right, top, bottom = left - origin_x, right - origin_x, top - origin_y, bottom - origin_y
    for _ in range(level):
        left, top, right, bottom = (left * UP_RATIO + 0.3, top * UP_RATIO + 0.3,
                                    right * UP_RATIO + 0.3, bottom * UP_RATIO + 0.3)
    return left, top, right, bottom
