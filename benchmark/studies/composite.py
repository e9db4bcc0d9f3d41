"""A composite null for the permutation test: two prediction sets with the same metrics in the population but
different predictions (the coverage harness's ``--comparison composite``).

The reference's true cell accuracies p_c are taken from its predictions on the large truth sample. The compared set
is correct on an image of person s in cell c exactly when U_s < p_c, U_s one uniform draw per person and task: its
accuracy in every cell is p_c in the population (so every metric, and every difference to the reference, is exactly
the reference's, 0), but its errors fall on whole persons (the strongest agreement a person's images can have) and
are independent of the reference's. The sign-flip permutation test assumes the two sets exchangeable within a person;
here they are not, so its rejection rate is its size under a composite null (same metric, different predictions).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from benchmark.core.design import CellLayout

__all__ = ["person_level_rows"]


def _wrong(labels: pd.Series, choices: tuple[str, ...]) -> np.ndarray:
    """A label other than each true one (the next in ``choices``)."""
    index = {c: i for i, c in enumerate(choices)}
    return np.array([choices[(index[v] + 1) % len(choices)] for v in labels])


def person_level_rows(reference: dict[str, pd.DataFrame], layout: CellLayout, attribute: str, *,
                      seed: int) -> dict[str, pd.DataFrame]:
    """partition -> the compared set's rows (see the module docstring); ``reference`` partition -> rows of the
    reference, with a ``truth`` partition (the large sample) whose cell accuracies are the p_c."""
    truth = reference["truth"]
    tasks = (attribute, "emotion")
    p = {}
    for task in tasks:
        correct = truth[f"pred_{task}"] == truth[task]
        p[task] = correct.groupby([truth[attribute], truth["emotion"]]).mean().to_dict()
    out = {}
    for part, rows in reference.items():
        rng = np.random.default_rng([seed, zlib.crc32(part.encode("utf-8")), 7])
        rows = rows.copy()
        subjects, position = np.unique(rows["subject"].astype(str).to_numpy(), return_inverse=True)
        for task in tasks:
            u = rng.random(len(subjects))[position]
            cell_p = np.array([p[task].get((g, e), 0.0) for g, e in zip(rows[attribute], rows["emotion"])])
            right = u < cell_p
            choices = layout.groups if task == attribute else layout.emotions
            rows[f"pred_{task}"] = np.where(right, rows[task].to_numpy(), _wrong(rows[task], choices))
        out[part] = rows
    return out
