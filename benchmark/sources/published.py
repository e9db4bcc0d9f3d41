"""The ``published`` source: the paper authors' per-image FairFace and EmoNet outputs, pinned by commit and sha256.

The authors' CSV format: array columns are numpy reprs (``[0.05 0.95]``, with spaces and line breaks inside quotes);
``fairface_logits`` holds the two softmax probabilities (male, female) despite its name; ``emonet_logits`` holds the 8
raw EmoNet logits; ``age_scores_fair`` FairFace's 9 age-bin probabilities; ``label`` is the true emotion
(angry/disgust/fear/happy/neutral/sad); ``original_gender`` the true gender; ``original_agegroup`` (FACES only) the true
age group (young/middle-age/old), which must agree with the age code of the file name; ``img_path`` the dataset's own
file name.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core.design import DatasetDesign, ImagesDeclaration
from benchmark.core.labels import (
    AGE_COLUMNS,
    EMONET_EMOTIONS,
    GENDER_COLUMNS,
    canonical_emotion,
    canonical_gender,
    canonical_group,
    emotion_column,
)
from benchmark.core.outputs import OutputsTable
from benchmark.infra import textfiles
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file
from benchmark.sources import names

REPOSITORY = "arin-upna/crossmodal_bias_mitigation"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"
DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class PinnedFile:
    """One published CSV: where it lives upstream and what its bytes must hash to."""

    dataset: str
    filename: str
    repo_path: str
    commit: str
    sha256: str
    rows: int

    @property
    def url(self) -> str:
        return RAW_URL.format(repo=REPOSITORY, commit=self.commit, path=self.repo_path)


PINNED: dict[str, PinnedFile] = {
    "faces": PinnedFile("faces", "faces_emonet_fairface.csv", "faces_emonet_fairface.csv",
                        "67632de1e9411acf4ad709f67224340105bbbfcb",
                        "aa26a63262fe01dd0fa890556e29db52ea24300df1c313f3c162d8965ce66249", 2052),
    "adfes": PinnedFile("adfes", "adfes_emonet_fairface.csv", "data/adfes_emonet_fairface.csv",
                        "680d63c4cafed9cd61bfde0a813f375fec24d1b3",
                        "09a2b8dddd28e59aacac0c2e4ca3e294400e4a7b1ca038b5898da37ef2ef77df", 132),
}

REQUIRED_CSV_COLUMNS = ("img_path", "label", "subject", "original_gender", "emonet_logits", "fairface_logits",
                        "age_scores_fair")
#: the authors' column of FACES' true age group, checked against the file name's age code
AGE_GROUP_CSV_COLUMN = "original_agegroup"
#: each published file follows its dataset's own naming scheme
NAMING: dict[str, ImagesDeclaration] = {d: ImagesDeclaration(naming=d) for d in PINNED}


def _download(pin: PinnedFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(pin.url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(tmp, "wb") as fh:
            shutil.copyfileobj(response, fh)
    except (urllib.error.URLError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise BenchmarkError(
            f"{pin.url}: download failed ({err}); no network? Copy the published CSVs into a folder and set "
            f"data.input to it (a local mirror), or use data.source: sim") from err
    tmp.replace(target)


def locate(dataset: str, folder: Path, *, download: bool) -> Path:
    """Path of the verified CSV for ``dataset`` inside ``folder``, downloading it first when allowed.

    Raises BenchmarkError when the file is missing (and download is off or fails) or its sha256 differs from the pin.
    """
    pin = PINNED[dataset]
    path = folder / pin.filename
    if not path.exists():
        if not download:
            raise BenchmarkError(
                f"{path}: published outputs file not found; set data.input to a local mirror folder holding "
                f"{pin.filename}, or set data.published.download: true to fetch it from {REPOSITORY}@{pin.commit[:7]}")
        _download(pin, path)
    actual = sha256_file(path)
    if actual != pin.sha256:
        raise BenchmarkError(
            f"{path}: sha256 {actual} does not match the pinned {pin.sha256} ({REPOSITORY}@{pin.commit[:7]}:{pin.repo_path}); "
            f"replace it with the pinned file (a local mirror via data.input, or data.published.download: true)")
    return path


def _parse_array(text: str, *, where: str, length: int) -> np.ndarray:
    """Parse a numpy repr such as ``'[0.1 0.9]'`` (possibly spanning lines) into a float array of ``length``."""
    body = str(text).strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise BenchmarkError(f"{where}: expected a bracketed array like '[0.1 0.9]', got {body[:40]!r}")
    try:
        values = np.array([float(tok) for tok in body[1:-1].split()], dtype=np.float64)
    except ValueError as err:
        raise BenchmarkError(f"{where}: non-numeric value in array {body[:60]!r}") from err
    if values.shape != (length,):
        raise BenchmarkError(f"{where}: expected {length} values, got {values.size}")
    return values


def parse_csv(path: Path, design: DatasetDesign) -> OutputsTable:
    """Parse one authors' CSV into an outputs table of the dataset ``design`` declares (not yet validated)."""
    dataset = design.name
    raw = textfiles.read_csv(path).frame  # strict: encoding, header, ragged rows; every value as text
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise BenchmarkError(f"{path}: missing column(s) {', '.join(missing)}; the authors' format has {', '.join(REQUIRED_CSV_COLUMNS)}")
    rows = []
    for i, rec in enumerate(raw.to_dict("records")):
        where = f"{path} row {i + 2}"
        parsed = names.parse(NAMING[dataset], rec["img_path"])
        if parsed is None:
            raise BenchmarkError(f"{where}: img_path {rec['img_path']!r} does not follow the {dataset} naming scheme "
                                 f"({names.SCHEMES[dataset]})")
        gender = canonical_gender(rec["original_gender"])
        emotion = canonical_emotion(rec["label"])
        if gender is None or emotion is None:
            raise BenchmarkError(f"{where}: unknown label original_gender={rec['original_gender']!r} label={rec['label']!r}")
        labels = {**parsed.labels, "gender": gender}
        if AGE_GROUP_CSV_COLUMN in rec and "age_group" in labels:
            stated = canonical_group("age_group", rec[AGE_GROUP_CSV_COLUMN])
            if stated != labels["age_group"]:
                raise BenchmarkError(f"{where}: {AGE_GROUP_CSV_COLUMN}={rec[AGE_GROUP_CSV_COLUMN]!r} disagrees with the "
                                     f"age code of img_path {rec['img_path']!r} ({labels['age_group']})")
        probs = _parse_array(rec["fairface_logits"], where=f"{where} column fairface_logits", length=len(GENDER_COLUMNS))
        ages = _parse_array(rec["age_scores_fair"], where=f"{where} column age_scores_fair", length=len(AGE_COLUMNS))
        logits = _parse_array(rec["emonet_logits"], where=f"{where} column emonet_logits", length=len(EMONET_EMOTIONS))
        row = {"dataset": dataset, "image_id": rec["img_path"], "subject": parsed.subject, "emotion": emotion, **labels}
        row.update(zip(GENDER_COLUMNS, probs))
        row.update(zip(AGE_COLUMNS, ages))
        row.update({emotion_column(c): v for c, v in zip(EMONET_EMOTIONS, logits)})
        row.update(parsed.extras)
        rows.append(row)
    frame = pd.DataFrame(rows)
    return OutputsTable(frame, design, EMONET_EMOTIONS, {"source": "published", "file": path.name,
                                                          "sha256": sha256_file(path), "repository": REPOSITORY,
                                                          "commit": PINNED[dataset].commit})


def load(design: DatasetDesign, folder: Path | str, *, download: bool = False) -> OutputsTable:
    """The outputs table of the dataset ``design`` declares from the pinned published CSV in ``folder``."""
    if design.name not in PINNED:
        raise BenchmarkError(f"data.datasets: the published source has no dataset {design.name!r}; it has "
                             f"{', '.join(PINNED)}")
    return parse_csv(locate(design.name, Path(folder), download=download), design)
