"""The ``images`` source: the user's licensed images (FACES, ADFES, or any declared dataset) -> face chips -> frozen
models -> outputs tables.

Layout: ``data.input`` (default ``data/raw``, tracked with ``dvc add data/raw``, never committed) holds one folder per
dataset (``faces/``, ``adfes/`` ...), searched recursively for .jpg, .jpeg and .png files named in the dataset's
declared scheme (``images.naming`` of its declaration; :mod:`benchmark.sources.names`). A scan checks every file
(name, readability, truncation, duplicates, and, where the declaration gives them, the number of images per subject
and emotion and the totals) and reports problems file by file as warnings, or as one error when
``data.images.strict`` is true. Pictures of emotions outside the declared ones (ADFES: contempt, embarrassment ...)
are ignored and counted. The manifest (``data/chips/manifest_<dataset>.csv``) lists every file with what its name
says and its status.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from PIL import Image

from benchmark.core.design import DatasetDesign, ImagesDeclaration
from benchmark.core.labels import GENDER_COLUMNS, GENDERS, canonical_gender, emotion_column
from benchmark.core.outputs import OutputsTable
from benchmark.infra import atomic, paths
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_bytes
from benchmark.sources import names

if TYPE_CHECKING:
    from benchmark.core.settings import DataSettings, ImagesSettings
    from benchmark.frozen.chips import ChipRecord, Shard

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
SHOWN_PROBLEMS = 3


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
    emotion: str | None = None
    raw_emotion: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
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

    design: DatasetDesign
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
    sha = sha256_bytes(data)
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


def _entry(design: DatasetDesign, naming: ImagesDeclaration, path: Path, folder: Path) -> Entry:
    parsed = names.parse(naming, path.name)
    relative = str(path.relative_to(folder))
    if parsed is None:
        return Entry(design.name, path.name, relative, UNPARSEABLE,
                     problem=f"file name does not follow the {design.name} scheme {names.scheme(naming)}")
    entry = Entry(design.name, path.name, relative, OK, subject=parsed.subject, emotion=parsed.emotion,
                  raw_emotion=parsed.raw_emotion, labels=dict(parsed.labels),
                  picture_set=parsed.extras.get("picture_set"))
    if parsed.emotion not in design.emotions:
        entry.status, entry.emotion = IGNORED, None
    return entry


def _identity(entry: Entry) -> tuple:
    return (entry.subject, entry.emotion or entry.raw_emotion, entry.picture_set)


def _check_counts(scan: Scan) -> None:
    """Per subject, one group of each attribute; where declared, the images per subject and emotion and the totals."""
    expected = scan.design.images
    usable = scan.usable
    by_subject: dict[str, list[Entry]] = collections.defaultdict(list)
    for entry in usable:
        by_subject[entry.subject].append(entry)
    where = str(scan.folder)
    for subject, entries in sorted(by_subject.items()):
        for attribute in scan.design.attributes:
            values = sorted({e.labels[attribute] for e in entries if e.labels.get(attribute)})
            if len(values) > 1:
                scan.problems.append(Problem(f"{where} subject {subject}", f"file names give {attribute} {' and '.join(values)}; a subject has one"))
        if expected.per_subject_emotion is not None:
            counts = collections.Counter(e.emotion for e in entries)
            for emotion in scan.design.emotions:
                if counts[emotion] != expected.per_subject_emotion:
                    scan.problems.append(Problem(f"{where} subject {subject}",
                                                 f"{counts[emotion]} {emotion} image(s); expected {expected.per_subject_emotion}"))
    if ((expected.expected_images is not None and len(usable) != expected.expected_images)
            or (expected.expected_subjects is not None and len(by_subject) != expected.expected_subjects)):
        scan.problems.append(Problem(where, f"{len(usable)} usable images of {len(by_subject)} subjects; the full "
                                            f"{scan.design.name.upper()} set has {expected.expected_images} images of "
                                            f"{expected.expected_subjects} subjects"))


def scan(design: DatasetDesign, folder: Path | str) -> Scan:
    """Scan ``folder`` (recursively) for the images of the dataset ``design`` declares; see the module docstring for
    the checks."""
    folder, dataset, naming = Path(folder), design.name, design.images
    if naming is None:
        raise BenchmarkError(f"data.datasets: dataset {dataset!r} declares no images (file-name scheme); the images "
                             "source needs one (images.naming in its declaration, docs/DATASETS.md)")
    if not folder.is_dir():
        raise BenchmarkError(f"{folder}: image folder not found; put the {dataset.upper()} images in data.input/{dataset}/ "
                             f"(see docs/IMAGES.md)")
    result = Scan(design, folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise BenchmarkError(f"{folder}: no .jpg/.jpeg/.png files; expected {dataset.upper()} images named {names.scheme(naming)}")
    seen_identity: dict[tuple, str] = {}
    seen_content: dict[str, str] = {}
    for path in files:
        entry = _entry(design, naming, path, folder)
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
    """The manifest: one row per file, in path order; one column per attribute of the declaration."""
    fields = [f for f in Entry.__dataclass_fields__ if f != "labels"]
    columns = fields[:fields.index("raw_emotion") + 1] + list(result.design.attributes) + fields[fields.index("raw_emotion") + 1:]
    rows = [{**{k: v for k, v in asdict(e).items() if k != "labels"}, **e.labels} for e in result.entries]
    return pd.DataFrame(rows, columns=columns)


def manifest_path(dataset: str, chips_dir: Path = paths.CHIPS_DIR) -> Path:
    """``data/chips/manifest_<dataset>.csv``."""
    return Path(chips_dir) / f"manifest_{dataset}.csv"


def write_manifest(result: Scan, path: Path) -> None:
    """Write the manifest CSV atomically."""
    frame = manifest_frame(result)
    atomic.write_with(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))


def scan_and_report(design: DatasetDesign, settings: DataSettings, *, strict: bool | None = None,
                    chips_dir: Path = paths.CHIPS_DIR) -> tuple[Scan, Path]:
    """Scan one dataset folder, write its manifest, report its problems; returns the scan and the manifest path."""
    strict = settings.images.strict if strict is None else strict
    result = scan(design, Path(settings.input) / design.name)
    target = manifest_path(design.name, chips_dir)
    write_manifest(result, target)
    if result.ignored:
        log.info("%s: ignored %d image(s) of emotions outside the declared ones: %s", result.folder,
                 sum(result.ignored.values()), ", ".join(f"{k} {v}" for k, v in sorted(result.ignored.items())))
    report(result.problems, strict=strict, what=str(result.folder))
    return result, target


def _chip_settings(images: ImagesSettings):
    from benchmark.frozen.chips import ChipSettings

    return ChipSettings(detector=images.detector, upsample=images.upsample, max_side=images.max_side,
                        size=images.chip_size, padding=images.padding)


def chip_images(result: Scan, images: ImagesSettings, *, chips_dir: Path, device: str, progress: bool = True,
                shard: Shard | None = None) -> dict[str, ChipRecord]:
    """Face chips of a scan's usable images (cached), detected on ``data.images.detect_workers`` processes;
    ``shard`` restricts them to one shard. Image id -> ChipRecord."""
    from benchmark.frozen import chips

    return chips.make_chips({e.image_id: (result.folder / e.path, e.sha256) for e in result.usable},
                            dataset=result.design.name, chips_dir=chips_dir, settings=_chip_settings(images),
                            num_workers=chips.resolve_workers(images.detect_workers), device=device,
                            progress=progress, shard=shard)


def chip_dataset(design: DatasetDesign, settings: DataSettings, *, shard: Shard | None = None,
                 chips_dir: Path = paths.CHIPS_DIR, progress: bool = True) -> tuple[Scan, dict[str, ChipRecord]]:
    """``benchmark images chips``: scan one dataset and make its (or one shard's) chips, without the models."""
    from benchmark.frozen import extract

    result, _ = scan_and_report(design, settings, chips_dir=chips_dir)
    device = extract.resolve_device(settings.images.device)
    return result, chip_images(result, settings.images, chips_dir=chips_dir, device=device.type, progress=progress,
                               shard=shard)


def _table(design: DatasetDesign, entries: list[Entry], records: dict, extraction: Any, gender_model: Any,
           emotion_model: Any) -> pd.DataFrame:
    """The outputs table's rows: what the file names say (subject, emotion, every attribute they carry) and the
    models' outputs (gender probabilities, the gender model's extras such as FairFace's age bins, emotion logits)."""
    gender_out, emotion_out = extraction.outputs
    model_column = {canonical_gender(c): i for i, c in enumerate(gender_model.classes)}
    frame = pd.DataFrame({"dataset": design.name, "image_id": [e.image_id for e in entries],
                          "subject": [e.subject for e in entries], "emotion": [e.emotion for e in entries]})
    for attribute in sorted({a for e in entries for a in e.labels}):
        frame[attribute] = [e.labels.get(attribute) for e in entries]
    probs = gender_out["scores"]
    for column, gender in zip(GENDER_COLUMNS, GENDERS):
        frame[column] = probs[:, model_column[gender]]
    for extra in gender_model.extras:
        frame[extra] = gender_out[extra]
    for i, cls in enumerate(emotion_model.classes):
        frame[emotion_column(cls)] = emotion_out["scores"][:, i]
    for extra in emotion_model.extras:
        frame[extra] = emotion_out[extra]
    if any(e.picture_set for e in entries):
        frame["picture_set"] = [e.picture_set for e in entries]
    frame["n_faces"] = [records[e.image_id].n_faces for e in entries]
    return frame


def load(design: DatasetDesign, settings: DataSettings, *, chips_dir: Path = paths.CHIPS_DIR,
         progress: bool = True) -> OutputsTable:
    """The outputs table of the dataset ``design`` declares from its raw images: scan, chips (cached), both frozen
    models."""
    from benchmark.frozen import chips, extract, model_registry

    images, dataset = settings.images, design.name
    result, manifest = scan_and_report(design, settings, chips_dir=chips_dir)
    usable = result.usable
    # models, device and precision are checked before face detection, the slow step
    device = extract.resolve_device(images.device)
    extract.check_precision(images.precision, device)
    gender_model = model_registry.build(images.gender_model, task="gender", settings=images)
    emotion_model = model_registry.build(images.emotion_model, task="emotion", settings=images)
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
    frame = _table(design, kept, records, extraction, gender_model, emotion_model)
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
    return OutputsTable(frame, design, tuple(emotion_model.classes), metadata)
