"""The ``images`` source: the user's licensed FACES / ADFES images -> face chips -> frozen models -> outputs tables.

Layout: ``data.input`` (default ``data/raw``, tracked with ``dvc add data/raw``, never committed) holds one folder per
dataset, ``faces/`` and ``adfes/``, searched recursively for .jpg, .jpeg and .png files named in the dataset's scheme
(``benchmark.sources.names``). A scan checks every file (name, readability, truncation, duplicates, and the number of
images per subject and emotion) and reports problems file by file as warnings, or as one error when
``data.images.strict`` is true. ADFES stills of emotions outside the six shared ones are ignored and counted.
The manifest (``data/chips/manifest_<dataset>.csv``) lists every file with what its name says and its status.
"""

from __future__ import annotations

import collections
import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from PIL import Image

from benchmark import atomic, paths
from benchmark.errors import BenchmarkError
from benchmark.labels import DATASET_EMOTIONS, GENDER_COLUMNS, GENDERS, canonical_gender, emotion_column
from benchmark.outputs import OutputsTable
from benchmark.sources import names

if TYPE_CHECKING:
    from benchmark.config import DataSettings, ImagesSettings, TrackingSettings
    from benchmark.frozen.chips import ChipRecord, Shard

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
SHOWN_PROBLEMS = 3


@dataclass(frozen=True)
class Expected:
    """What a complete copy of a dataset holds."""

    images: int
    subjects: int
    per_subject_emotion: int  # images of each subject for each of the six shared emotions


EXPECTED: dict[str, Expected] = {
    "faces": Expected(images=2052, subjects=171, per_subject_emotion=2),  # two picture sets (a, b)
    "adfes": Expected(images=132, subjects=22, per_subject_emotion=1),
}

# statuses of a file in the manifest
OK, IGNORED, UNPARSEABLE, UNREADABLE, TRUNCATED, DUPLICATE = "ok", "ignored_emotion", "unparseable_name", "unreadable", "truncated", "duplicate"


@dataclass
class Entry:
    """One file under the dataset folder, what its name says and its status (``ok`` is usable)."""

    dataset: str
    image_id: str
    path: str
    status: str
    subject: str | None = None
    gender: str | None = None
    emotion: str | None = None
    raw_emotion: str | None = None
    age_group: str | None = None
    picture_set: str | None = None
    sha256: str | None = None
    problem: str = ""


@dataclass(frozen=True)
class Problem:
    """One file-level (or subject-level) problem; ``str()`` is the line reported."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Scan:
    """Everything found under one dataset folder."""

    dataset: str
    folder: Path
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ignored: collections.Counter = field(default_factory=collections.Counter)

    @property
    def usable(self) -> list[Entry]:
        """Entries with status ``ok``, in file-name order."""
        return [e for e in self.entries if e.status == OK]


def _hash_and_check(path: Path) -> tuple[str | None, str | None, str]:
    """(sha256, failure status, message): decode the whole image (JPEG at reduced scale) to catch truncation."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(path) as image:
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except OSError as err:
        status = TRUNCATED if "truncated" in str(err).lower() else UNREADABLE
        return sha, status, f"{'truncated' if status == TRUNCATED else 'not a readable image'} ({err})"
    except (ValueError, Image.DecompressionBombError) as err:
        return sha, UNREADABLE, f"not a readable image ({err})"
    return sha, None, ""


def _entry(dataset: str, path: Path, folder: Path) -> Entry:
    parsed = names.parse(dataset, path.name)
    relative = str(path.relative_to(folder))
    if parsed is None:
        return Entry(dataset, path.name, relative, UNPARSEABLE,
                     problem=f"file name does not follow the {dataset} scheme {names.SCHEMES[dataset]}")
    entry = Entry(dataset, path.name, relative, OK, subject=parsed.subject, gender=parsed.gender, emotion=parsed.emotion,
                  raw_emotion=parsed.raw_emotion, age_group=parsed.extras.get("age_group"),
                  picture_set=parsed.extras.get("picture_set"))
    if parsed.emotion is None:
        entry.status = IGNORED
    return entry


def _identity(entry: Entry) -> tuple:
    return (entry.subject, entry.emotion or entry.raw_emotion, entry.picture_set)


def _check_counts(scan: Scan) -> None:
    """Per subject and emotion, the expected number of images; per subject, one gender and age group; totals."""
    expected = EXPECTED[scan.dataset]
    usable = scan.usable
    by_subject: dict[str, list[Entry]] = collections.defaultdict(list)
    for entry in usable:
        by_subject[entry.subject].append(entry)
    where = str(scan.folder)
    for subject, entries in sorted(by_subject.items()):
        for attribute in ("gender", "age_group"):
            values = sorted({getattr(e, attribute) for e in entries if getattr(e, attribute)})
            if len(values) > 1:
                scan.problems.append(Problem(f"{where} subject {subject}", f"file names give {attribute} {' and '.join(values)}; a subject has one"))
        counts = collections.Counter(e.emotion for e in entries)
        for emotion in DATASET_EMOTIONS:
            if counts[emotion] != expected.per_subject_emotion:
                scan.problems.append(Problem(f"{where} subject {subject}",
                                             f"{counts[emotion]} {emotion} image(s); expected {expected.per_subject_emotion}"))
    if len(usable) != expected.images or len(by_subject) != expected.subjects:
        scan.problems.append(Problem(where, f"{len(usable)} usable images of {len(by_subject)} subjects; the full "
                                            f"{scan.dataset.upper()} set has {expected.images} images of {expected.subjects} subjects"))


def scan(dataset: str, folder: Path | str) -> Scan:
    """Scan ``folder`` (recursively) for ``dataset``'s images; see the module docstring for the checks."""
    folder = Path(folder)
    if dataset not in EXPECTED:
        raise BenchmarkError(f"data.datasets: the images source knows {', '.join(EXPECTED)}, not {dataset!r}")
    if not folder.is_dir():
        raise BenchmarkError(f"{folder}: image folder not found; put the {dataset.upper()} images in data.input/{dataset}/ "
                             f"(see docs/IMAGES.md)")
    result = Scan(dataset, folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise BenchmarkError(f"{folder}: no .jpg/.jpeg/.png files; expected {dataset.upper()} images named {names.SCHEMES[dataset]}")
    seen_identity: dict[tuple, str] = {}
    seen_content: dict[str, str] = {}
    for path in files:
        entry = _entry(dataset, path, folder)
        result.entries.append(entry)
        if entry.status == UNPARSEABLE:
            result.problems.append(Problem(str(path), entry.problem))
            continue
        entry.sha256, failure, message = _hash_and_check(path)
        if failure:
            entry.status, entry.problem = failure, message
            result.problems.append(Problem(str(path), message))
            continue
        first = seen_identity.get(_identity(entry)) or seen_content.get(entry.sha256)
        if first is not None:
            entry.status, entry.problem = DUPLICATE, f"duplicate of {first}"
            result.problems.append(Problem(str(path), entry.problem + "; left out"))
            continue
        seen_identity[_identity(entry)] = entry.path
        seen_content[entry.sha256] = entry.path
        if entry.status == IGNORED:
            result.ignored[entry.raw_emotion] += 1
    _check_counts(result)
    return result


def report(problems: list[Problem], *, strict: bool, what: str) -> None:
    """Log each problem as a warning; under strict, raise one BenchmarkError after listing them."""
    for problem in problems:
        log.warning("%s", problem)
    if strict and problems:
        shown = "; ".join(str(p) for p in problems[:SHOWN_PROBLEMS])
        more = f" (and {len(problems) - SHOWN_PROBLEMS} more, listed above)" if len(problems) > SHOWN_PROBLEMS else ""
        raise BenchmarkError(f"{what}: {len(problems)} problem(s) with data.images.strict: true: {shown}{more}")


def manifest_frame(result: Scan) -> pd.DataFrame:
    """The manifest: one row per file, in path order."""
    return pd.DataFrame([asdict(e) for e in result.entries], columns=list(Entry.__dataclass_fields__))


def manifest_path(dataset: str, chips_dir: Path = paths.CHIPS_DIR) -> Path:
    """``data/chips/manifest_<dataset>.csv``."""
    return Path(chips_dir) / f"manifest_{dataset}.csv"


def write_manifest(result: Scan, path: Path) -> None:
    """Write the manifest CSV atomically."""
    frame = manifest_frame(result)
    atomic.write_with(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))


def scan_and_report(dataset: str, settings: "DataSettings", *, strict: bool | None = None,
                    chips_dir: Path = paths.CHIPS_DIR) -> tuple[Scan, Path]:
    """Scan one dataset folder, write its manifest, report its problems; returns the scan and the manifest path."""
    strict = settings.images.strict if strict is None else strict
    result = scan(dataset, Path(settings.input) / dataset)
    target = manifest_path(dataset, chips_dir)
    write_manifest(result, target)
    if result.ignored:
        log.info("%s: ignored %d image(s) of emotions outside the six shared ones: %s", result.folder,
                 sum(result.ignored.values()), ", ".join(f"{k} {v}" for k, v in sorted(result.ignored.items())))
    report(result.problems, strict=strict, what=str(result.folder))
    return result, target


def _chip_settings(images: "ImagesSettings"):
    from benchmark.frozen.chips import ChipSettings

    return ChipSettings(detector=images.detector, upsample=images.upsample, max_side=images.max_side,
                        size=images.chip_size, padding=images.padding)


def chip_images(result: Scan, images: "ImagesSettings", *, chips_dir: Path, device: str, progress: bool = True,
                shard: "Shard | None" = None) -> "dict[str, ChipRecord]":
    """Face chips of a scan's usable images (cached), detected on ``data.images.detect_workers`` processes;
    ``shard`` restricts them to one shard. Image id -> ChipRecord."""
    from benchmark.frozen import chips

    return chips.make_chips({e.image_id: (result.folder / e.path, e.sha256) for e in result.usable},
                            dataset=result.dataset, chips_dir=chips_dir, settings=_chip_settings(images),
                            num_workers=chips.resolve_workers(images.detect_workers), device=device,
                            progress=progress, shard=shard)


def chip_dataset(dataset: str, settings: "DataSettings", *, shard: "Shard | None" = None,
                 chips_dir: Path = paths.CHIPS_DIR, progress: bool = True) -> "tuple[Scan, dict[str, ChipRecord]]":
    """``benchmark images chips``: scan one dataset and make its (or one shard's) chips, without the models."""
    from benchmark.frozen import extract

    result, _ = scan_and_report(dataset, settings, chips_dir=chips_dir)
    device = extract.resolve_device(settings.images.device)
    return result, chip_images(result, settings.images, chips_dir=chips_dir, device=device.type, progress=progress,
                               shard=shard)


def _table(dataset: str, entries: list[Entry], records: dict, extraction: Any, gender_model: Any,
           emotion_model: Any) -> pd.DataFrame:
    gender_scores, emotion_out = extraction.outputs
    model_column = {canonical_gender(c): i for i, c in enumerate(gender_model.classes)}
    frame = pd.DataFrame({"dataset": dataset, "image_id": [e.image_id for e in entries],
                          "subject": [e.subject for e in entries], "gender": [e.gender for e in entries],
                          "emotion": [e.emotion for e in entries]})
    probs = gender_scores["scores"]
    for column, gender in zip(GENDER_COLUMNS, GENDERS):
        frame[column] = probs[:, model_column[gender]]
    for i, cls in enumerate(emotion_model.classes):
        frame[emotion_column(cls)] = emotion_out["scores"][:, i]
    for extra in emotion_model.extras:
        frame[extra] = emotion_out[extra]
    if dataset == "faces":
        frame["age_group"] = [e.age_group for e in entries]
        frame["picture_set"] = [e.picture_set for e in entries]
    frame["n_faces"] = [records[e.image_id].n_faces for e in entries]
    return frame


def load(dataset: str, settings: "DataSettings", *, chips_dir: Path = paths.CHIPS_DIR, progress: bool = True) -> OutputsTable:
    """The outputs table of ``dataset`` from its raw images: scan, chips (cached), both frozen models."""
    from benchmark.frozen import chips, extract, registry

    images = settings.images
    result, manifest = scan_and_report(dataset, settings, chips_dir=chips_dir)
    usable = result.usable
    # models, device and precision are checked before face detection, the slow step
    device = extract.resolve_device(images.device)
    extract.check_precision(images.precision, device)
    gender_model = registry.build(images.gender_model, task="gender", settings=images)
    emotion_model = registry.build(images.emotion_model, task="emotion", settings=images)
    extract.check_inputs([gender_model, emotion_model], chip_padding=images.padding)
    chip_settings = _chip_settings(images)
    records = chip_images(result, images, chips_dir=chips_dir, device=device.type, progress=progress)
    face_problems = [Problem(str(result.folder / e.path), f"{records[e.image_id].message}; "
                             + ("left out" if records[e.image_id].chip is None else "chip made"))
                     for e in usable if records[e.image_id].status != chips.STATUS_OK]
    report(face_problems, strict=images.strict, what=f"{result.folder} (faces)")
    kept = [e for e in usable if records[e.image_id].status in chips.WITH_CHIP]
    if not kept:
        raise BenchmarkError(f"{result.folder}: no face chip could be made from any image; see the warnings above")
    root = Path(chips_dir) / chip_settings.key()
    extraction = extract.extract([root / records[e.image_id].chip for e in kept], [gender_model, emotion_model],
                                 chip_padding=images.padding, device=device, precision=images.precision,
                                 batch_size=images.batch_size, num_workers=images.num_workers, progress=progress,
                                 desc=f"{dataset}: extract")
    frame = _table(dataset, kept, records, extraction, gender_model, emotion_model)
    kept_ids = {e.image_id for e in kept}
    metadata = {"source": "images", "input": str(result.folder), "manifest": str(manifest),
                "files": len(result.entries), "usable": len(usable), "rows": len(kept),
                "problems": len(result.problems) + len(face_problems),
                "ignored_emotions": dict(sorted(result.ignored.items())),
                "left_out": {e.image_id: records[e.image_id].status for e in usable if e.image_id not in kept_ids},
                "chips": {**asdict(chip_settings), "key": chip_settings.key()},
                "gender_model": gender_model.metadata(), "emotion_model": emotion_model.metadata(),
                "device": extraction.device, "precision": extraction.precision,
                "precision_check": extraction.precision_check}
    return OutputsTable(frame, tuple(emotion_model.classes), metadata)


def log_provenance(tables: dict[str, OutputsTable], tracking: "TrackingSettings", *, params: dict[str, Any]) -> None:
    """One MLflow run ``fetch:images`` with the data params, the models' weights sha256 and the device as tags."""
    from benchmark import tracking as tracking_module

    mlflow = tracking_module.setup(tracking)
    first = next(iter(tables.values())).metadata
    tags = {"stage": "fetch", "source": "images", "device": first["device"], "precision": first["precision"],
            "git_commit": tracking_module.git_commit()}
    for role in ("gender_model", "emotion_model"):
        model = first[role]
        tags[role] = model["name"]
        if "weights_sha256" in model:
            tags[f"{role}_sha256"] = model["weights_sha256"]
    with tracking_module.run(mlflow, "fetch:images", tags=tags):
        mlflow.log_params({k: str(v)[:250] for k, v in params.items()})
        for dataset, table in tables.items():
            mlflow.log_metric(f"{dataset}_rows", len(table.frame))
            mlflow.log_metric(f"{dataset}_problems", table.metadata["problems"])
