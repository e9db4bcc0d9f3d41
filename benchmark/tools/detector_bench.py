"""Face detectors side by side: how closely one chip pipeline reproduces another, and what each costs per image.

- :func:`agreement`: per picture, the kept face of a reference pipeline (dlib's ``cnn``) and of a candidate
  (``cnn_torch``): whether each found a face, the boxes' IoU (dlib's inclusive-pixel areas), the largest distance
  between corresponding landmarks (px of the resized image), and the chips' mean and largest absolute difference
  (grey levels over all size x size x 3 values).
- :func:`time_chips`: wall-clock and CPU seconds of :func:`benchmark.frozen.chips.make_chips` over image files, i.e.
  the whole per-image path (decode, resize, detect, landmarks, chip, PNG), on a number of worker processes.
- :func:`faces_sized`: a picture padded to FACES' portrait shape and resized to its 2835 x 3543 px originals, so
  timings include decoding and resizing images of the real size.
- :func:`detector_check`: the detection figures of ``scripts/gpu_check.sh --detector-images N``.

Used by ``tests/detector_agreement.py`` (the figures in docs/IMAGES.md and docs/PERFORMANCE.md) and by
``scripts/gpu_check.sh --detector-images N``.
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.frozen.chips import Aligner, ChipSettings, make_chips
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file

FACES_SIZE = (2835, 3543)  # (width, height) of a FACES original


@dataclass(frozen=True)
class Agreement:
    """One picture: reference vs candidate kept face (None where either found none)."""

    picture: str
    reference_found: bool
    candidate_found: bool
    box_iou: float | None = None
    landmark_max_px: float | None = None
    chip_mean_abs: float | None = None
    chip_max_abs: int | None = None


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two inclusive-pixel boxes (left, top, right, bottom), as dlib counts areas."""
    def area(box: tuple[int, int, int, int]) -> int:
        return max(0, box[2] - box[0] + 1) * max(0, box[3] - box[1] + 1)

    inner = area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    return inner / (area(a) + area(b) - inner) if inner else 0.0


def agreement(pictures: dict[str, np.ndarray], reference: Aligner, candidate: Aligner) -> list[Agreement]:
    """Compare the two aligners' kept face on each (H, W, 3) uint8 picture (see the module docstring)."""
    rows = []
    for name, rgb in pictures.items():
        ref, got = reference.find(rgb), candidate.find(rgb)
        if ref is None or got is None:
            rows.append(Agreement(name, ref is not None, got is not None))
            continue
        diff = np.abs(ref.chip.astype(np.int16) - got.chip.astype(np.int16))
        distance = float(np.sqrt(((ref.landmarks - got.landmarks) ** 2).sum(axis=1)).max())
        rows.append(Agreement(name, True, True, box_iou(ref.box, got.box), distance, float(diff.mean()), int(diff.max())))
    return rows


def summarize(rows: list[Agreement]) -> dict[str, Any]:
    """Counts and worst cases over pictures: found by both / either only, identical boxes and chips, minimum IoU,
    largest landmark distance, largest per-picture mean and maximum chip difference."""
    both = [r for r in rows if r.reference_found and r.candidate_found]
    return {"pictures": len(rows), "found_by_both": len(both),
            "found_by_reference_only": sum(r.reference_found and not r.candidate_found for r in rows),
            "found_by_candidate_only": sum(r.candidate_found and not r.reference_found for r in rows),
            "identical_boxes": sum(r.box_iou == 1.0 for r in both),
            "identical_chips": sum(r.chip_max_abs == 0 for r in both),
            "min_box_iou": min((r.box_iou for r in both), default=None),
            "max_landmark_px": max((r.landmark_max_px for r in both), default=None),
            "max_chip_mean_abs": max((r.chip_mean_abs for r in both), default=None),
            "max_chip_max_abs": max((r.chip_max_abs for r in both), default=None)}


def as_dicts(rows: list[Agreement]) -> list[dict[str, Any]]:
    """Rows as plain dicts (JSON)."""
    return [asdict(r) for r in rows]


def faces_sized(rgb: np.ndarray, size: tuple[int, int] = FACES_SIZE) -> np.ndarray:
    """``rgb`` edge-padded to the aspect of ``size`` (width, height), then resized to it (PIL bicubic)."""
    height, width = rgb.shape[:2]
    target_w, target_h = size
    if width / height < target_w / target_h:
        pad = round(height * target_w / target_h) - width
        rgb = np.pad(rgb, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)), mode="edge")
    else:
        pad = round(width * target_h / target_w) - height
        rgb = np.pad(rgb, ((pad // 2, pad - pad // 2), (0, 0), (0, 0)), mode="edge")
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))


def write_jpegs(pictures: list[np.ndarray], folder: Path) -> dict[str, tuple[Path, str]]:
    """Save pictures as JPEG (quality 95) in ``folder``: image id -> (path, sha256), as ``make_chips`` takes."""
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for i, picture in enumerate(pictures):
        path = folder / f"{i:04d}.jpg"
        Image.fromarray(picture).save(path, quality=95)
        images[path.name] = (path, sha256_file(path))
    return images


@dataclass(frozen=True)
class Timing:
    """``wall_s``: wall-clock seconds; ``cpu_s``: CPU seconds of this process and its finished worker processes."""

    wall_s: float
    cpu_s: float


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_chips(images: dict[str, tuple[Path, str]], settings: ChipSettings, *, workers: int,
               device: str = "cpu") -> Timing:
    """Time chipping ``images`` from scratch with ``workers`` processes (1: in this process), including starting
    the workers and loading the models. CPU time is robust to other jobs on the machine; wall time is not."""
    with tempfile.TemporaryDirectory() as chips_dir:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        make_chips(images, dataset="faces", chips_dir=Path(chips_dir), settings=settings, num_workers=workers,
                   progress=False, device=device)
        return Timing(time.perf_counter() - wall, _cpu_seconds() - cpu)


def astronaut() -> np.ndarray:
    """scikit-image's astronaut picture (512 x 512 RGB; a test dependency, no download)."""
    try:
        from skimage import data
    except ImportError as err:
        raise BenchmarkError("the detector check needs scikit-image (the test extra): pip install -e '.[test]'") from err
    return data.astronaut()


def detector_check(n_images: int, *, device: str, workers: int, size: tuple[int, int] = FACES_SIZE, upsample: int = 1,
                   max_side: int = 800) -> dict[str, Any]:
    """The detection figures of a GPU check: ``cnn_torch`` on ``device`` vs dlib's ``cnn`` on the CPU.

    ``n_images`` copies of the astronaut at ``size`` (FACES' originals by default) as JPEG, chipped with FairFace's
    settings by ``cnn_torch`` on ``workers`` processes and by dlib's ``cnn`` on ``workers`` processes over the first
    ``workers`` images (one each); images/s of each, their ratio, the time for the 2,052 FACES images at each
    measured rate (worker start-up spread as in the measured run, so an over-estimate) and the agreement of the two
    pipelines' chips on one picture.
    """
    picture = faces_sized(astronaut(), size)
    torch_settings = ChipSettings(detector="cnn_torch", upsample=upsample, max_side=max_side)
    dlib_settings = ChipSettings(detector="cnn", upsample=upsample, max_side=max_side)
    with tempfile.TemporaryDirectory() as folder:
        images = write_jpegs([picture] * n_images, Path(folder))
        torch_seconds = time_chips(images, torch_settings, workers=workers, device=device).wall_s
        first = dict(list(images.items())[:min(workers, n_images)])
        dlib_seconds = time_chips(first, dlib_settings, workers=workers).wall_s
    torch_rate, dlib_rate = n_images / torch_seconds, len(first) / dlib_seconds
    rows = agreement({"astronaut": picture}, Aligner(dlib_settings), Aligner(torch_settings, device=device))
    return {"device": device, "workers": workers, "image_size": list(size), "upsample": upsample, "max_side": max_side,
            "cnn_torch": {"images": n_images, "seconds": round(torch_seconds, 2), "images_per_s": round(torch_rate, 2)},
            "cnn": {"images": len(first), "seconds": round(dlib_seconds, 2), "images_per_s": round(dlib_rate, 3)},
            "speedup": round(torch_rate / dlib_rate, 1),
            "faces_2052_projected_s": {"cnn_torch": round(2052 / torch_rate), "cnn": round(2052 / dlib_rate)},
            "agreement": as_dicts(rows)[0]}
