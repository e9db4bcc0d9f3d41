"""dlib's image resizing and the detector's input pyramid, bit for bit, in torch (CPU or CUDA).

dlib's CNN face detector (``cnn_face_detection_model_v1``) does not see the image itself. With ``upsample`` n it
first doubles the RGB image n times (``pyramid_up`` with ``pyramid_down<2>``: dlib's RGB bilinear ``resize_image``,
values truncated to uint8). Its input layer (``input_rgb_image_pyramid<pyramid_down<6>>``, dlib 19.8 and later)
then writes ``(pixel - channel mean) / 256`` into a float32 tensor of zeros, 11 px from the border, and below or
beside it each 5/6 reduction of the level before (float32 bilinear, not truncated), 10 px apart; the network scans
that tiled tensor at once.

dlib's bilinear ``resize_image`` (``dlib/image_transforms/interpolation.h``) maps corner to corner
(``x_in = x_out * (in - 1) / (out - 1)``, positions accumulated row by row in double and, for columns, four at a
time in float32 and truncated to integers), mixes the four neighbours in float32 with weights
``(1 - tb)(1 - lr)``, ``(1 - tb) lr``, ``tb (1 - lr)``, ``tb lr`` summed left to right, and computes the last columns
(where a group of four would read past the edge) in double. This module reproduces that arithmetic with separate,
unfused torch operations (each an IEEE-rounded float32 or float64 operation on either device), so its images equal
dlib's exactly (tests compare with ``dlib.resize_image`` on uint8 RGB and float32 images and with the detector).

Images here are channel-first tensors (C, H, W). Rectangles are dlib's: (left, top, right, bottom), inclusive
integer pixel coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

Rect = tuple[int, int, int, int]

PYRAMID_RATE = (6 - 1.0) / 6  # pyramid_down<6>: each level is 5/6 of the one before
UP_RATIO = 6 / (6 - 1.0)       # and a level's points map up by p * 6/5 + 0.3
TILE_PADDING = 10              # pixels between pyramid levels in the tiled tensor
OUTER_PADDING = 11             # pixels of border around it (dlib's defaults for a file that does not set them)
MIN_LEVEL_HEIGHT = 5           # smaller levels are not added


@dataclass(frozen=True)
class _Plan:
    """Where each output pixel of dlib's bilinear ``resize_image`` reads, and with which weights (on one device).

    Columns ``[:n]`` are dlib's four-at-a-time float32 loop (``left``, float32 ``frac``, ``inv_frac``); columns
    ``[n:]`` its double-precision tail (``tail_left``, ``tail_right``, float64 ``tail_frac``). Rows: ``top``,
    ``bottom`` and float64 ``tb``.
    """

    top: torch.Tensor
    bottom: torch.Tensor
    tb: torch.Tensor
    left: torch.Tensor
    frac: torch.Tensor
    tail_left: torch.Tensor
    tail_right: torch.Tensor
    tail_frac: torch.Tensor

    @property
    def n(self) -> int:
        return self.left.numel()


def _plan(in_rows: int, in_cols: int, rows: int, cols: int, device: torch.device) -> _Plan:
    x_scale = (in_cols - 1) / max(cols - 1, 1)
    y_scale = (in_rows - 1) / max(rows - 1, 1)
    y = np.cumsum(np.concatenate([[-y_scale], np.full(rows, y_scale)]))[1:]  # sequential double adds, as dlib
    top = np.floor(y).astype(np.int64)
    n_groups = cols // 4 + 2
    start = -4 * x_scale
    steps = np.empty((n_groups, 4), dtype=np.float32)
    steps[0] = np.array([start, start + x_scale, start + 2 * x_scale, start + 3 * x_scale], dtype=np.float32)
    steps[0] += np.float32(4 * x_scale)
    steps[1:] = np.float32(4 * x_scale)
    positions = np.cumsum(steps, axis=0, dtype=np.float32)  # sequential float32 adds, as the SIMD loop
    lefts = np.trunc(positions).astype(np.int64)
    groups = int(np.nonzero(lefts[:, 3] + 1 >= in_cols)[0][0])  # the first group reading past the edge ends it
    left, positions = lefts[:groups].reshape(-1), positions[:groups].reshape(-1)
    n = left.size
    x = np.cumsum(np.concatenate([[-x_scale + n * x_scale], np.full(cols - n, x_scale)]))[1:]
    tail_left = np.floor(x).astype(np.int64)

    def put(values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(values)).to(device)

    return _Plan(put(top), put(np.minimum(top + 1, in_rows - 1)), put(y - top), put(left),
                 put((positions - left.astype(np.float32)).astype(np.float32)),
                 put(tail_left), put(np.minimum(tail_left + 1, in_cols - 1)), put(x - tail_left))


def _simd_columns(image: torch.Tensor, plan: _Plan) -> torch.Tensor:
    """float32 ((w_tl tl + w_tr tr) + w_bl bl) + w_br br of the four-at-a-time columns; image (C, H, W) float32."""
    tb = plan.tb.to(torch.float32)[:, None]
    inv_tb = (1 - plan.tb).to(torch.float32)[:, None]
    lr = plan.frac[None, :]
    inv_lr = torch.sub(1, plan.frac)[None, :]
    left, right = image.index_select(2, plan.left), image.index_select(2, plan.left + 1)
    value = torch.mul(inv_tb * inv_lr, left.index_select(1, plan.top))
    value.add_(torch.mul(inv_tb * lr, right.index_select(1, plan.top)))
    value.add_(torch.mul(tb * inv_lr, left.index_select(1, plan.bottom)))
    value.add_(torch.mul(tb * lr, right.index_select(1, plan.bottom)))
    return value


def _tail_corners(image: torch.Tensor, plan: _Plan) -> tuple[torch.Tensor, ...]:
    left, right = image.index_select(2, plan.tail_left), image.index_select(2, plan.tail_right)
    return (left.index_select(1, plan.top), right.index_select(1, plan.top),
            left.index_select(1, plan.bottom), right.index_select(1, plan.bottom))


def resize_rgb(image: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """dlib's ``resize_image`` (bilinear) of a (3, H, W) uint8 RGB image to (3, rows, cols) uint8, bit for bit.

    The four-at-a-time columns mix in float32, the tail columns in double; values are truncated.
    """
    plan = _plan(image.shape[1], image.shape[2], rows, cols, image.device)
    out = torch.empty((image.shape[0], rows, cols), dtype=torch.uint8, device=image.device)
    n = plan.n
    if n:
        out[:, :, :n] = _simd_columns(image.to(torch.float32), plan).trunc_().to(torch.uint8)
    if n < cols:
        tl, tr, bl, br = _tail_corners(image.to(torch.float64), plan)
        lr, tb = plan.tail_frac[None, None, :], plan.tb[None, :, None]
        value = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
        out[:, :, n:] = value.trunc_().to(torch.uint8)
    return out


def resize_float(image: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """dlib's ``resize_image`` (bilinear) of each channel of a (C, H, W) float32 image, bit for bit.

    The float path: tail columns mix horizontally in float32 (float32 column fraction), vertically in double, and
    round to float32.
    """
    plan = _plan(image.shape[1], image.shape[2], rows, cols, image.device)
    out = torch.empty((image.shape[0], rows, cols), dtype=torch.float32, device=image.device)
    n = plan.n
    if n:
        out[:, :, :n] = _simd_columns(image, plan)
    if n < cols:
        tl, tr, bl, br = _tail_corners(image, plan)
        lr = plan.tail_frac.to(torch.float32)[None, None, :]
        inv_lr = torch.sub(1, lr)
        upper = torch.mul(inv_lr, tl).add_(torch.mul(lr, tr)).to(torch.float64)
        lower = torch.mul(inv_lr, bl).add_(torch.mul(lr, br)).to(torch.float64)
        tb = plan.tb[None, :, None]
        out[:, :, n:] = torch.mul(1 - tb, upper).add_(torch.mul(tb, lower)).to(torch.float32)
    return out


def pyramid_up(image: torch.Tensor) -> torch.Tensor:
    """dlib's ``pyramid_up(img, pyramid_down<2>)``: (3, H, W) uint8 -> (3, 2H + 1, 2W + 2), bilinear.

    The size is dlib's ``rect_up`` of the image rectangle, point_up(p) = 2 (p + (1.25, 0.75)), rounded.
    """
    rows, cols = image.shape[1:]
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


def tiled_pyramid(image: torch.Tensor) -> tuple[torch.Tensor, list[Rect]]:
    """The detector's input tensor: a (C, H, W) float32 image and its 5/6 reductions tiled on zeros.

    As dlib's ``input_rgb_image_pyramid::to_tensor``: the (already normalised) image goes at the first rectangle,
    and each further level is :func:`resize_float` of the level before. Returns the tiled (C, rows, cols) float32
    tensor (on the image's device) and each level's rectangle in it.
    """
    rects, (rows, cols) = tile_layout(image.shape[1], image.shape[2])
    tiled = torch.zeros((image.shape[0], rows, cols), dtype=torch.float32, device=image.device)
    previous = image
    for i, (left, top, right, bottom) in enumerate(rects):
        level = image if i == 0 else resize_float(previous, bottom - top + 1, right - left + 1)
        tiled[:, top:bottom + 1, left:right + 1] = level
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
