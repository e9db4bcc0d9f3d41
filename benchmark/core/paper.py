"""The paper's reported numbers (percent), for the reproduction table. Layout: (dataset, task) -> row."""

from __future__ import annotations

#: (dataset, task) -> {"uncorrected": (macro, largest gap, average gap), "corrected": (...)}
PAPER_TABLE: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {
    ("faces", "gender"): {"uncorrected": (95.98, 21.18, 8.04), "corrected": (97.85, 11.18, 3.73)},
    ("faces", "emotion"): {"uncorrected": (74.57, 13.50, 4.20), "corrected": (93.91, 5.22, 2.62)},
    ("adfes", "gender"): {"uncorrected": (91.67, 20.00, 16.67), "corrected": (93.47, 20.00, 10.28)},
    ("adfes", "emotion"): {"uncorrected": (80.69, 25.00, 13.06), "corrected": (92.92, 40.00, 7.50)},
}
#: The paper trained on FACES and tested on ADFES; its FACES numbers are in-sample.
PAPER_SPLIT = "faces->adfes"
PAPER_PARTITION = {"faces": "train", "adfes": "test"}
PAPER_METHOD = "corrector"
#: The paper's protected attribute (its cells: 2 genders x 6 emotions).
PAPER_ATTRIBUTE = "gender"
