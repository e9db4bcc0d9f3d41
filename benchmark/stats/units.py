"""What the bootstrap resamples and the permutation tests draw: an evaluation group's subjects, or, for a design
without person ids, classes of identical images.

A resample is a vector of multiplicities over **units**, and every metric is a function of the units' per-cell counts
of every rate channel (:func:`unit_sums`: the correct counts and the false positives per (task, seed, cell)) over
their per-cell denominators (:func:`unit_totals`). Two kinds:

- ``subjects``: one unit per subject (person), in the design's order; the subject bootstrap as it always was.
- ``profiles``: where every subject has one image (no person ids: each image its own subject), the images that are
  alike in everything the statistics see (attribute group, cell, and for each method's each seed and task whether it
  was right and which declared class it was wrongly predicted as) form one unit of ``size`` images. Drawing n_g
  images with replacement from a group of n_g images gives, for each class of alike images, a multinomial count over
  the classes (sizes / n_g), and the cell sums of a resample depend on the draws only through those counts; so
  drawing the counts is the same bootstrap **in distribution** (not the same numbers as drawing images), at a cost
  that grows with the classes, not the images. A permutation exchanges each image with probability 1/2; the
  exchanged images of a class are Binomial(size, 1/2), the same test in distribution. The classes depend on every
  method of the group, so for such designs a method's numbers depend on the other methods analysed with it (in their
  Monte Carlo noise only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.stats.cells import Predicted, Rates, SubjectDesign, channel_sums, counts_totals

__all__ = ["KINDS", "Units", "is_singleton", "profile_units", "subject_units", "unit_sums", "unit_totals", "units_for"]

KINDS: tuple[str, ...] = ("subjects", "profiles")


@dataclass(frozen=True)
class Units:
    """The resampling units of one evaluation group (U of them).

    kind : 'subjects' or 'profiles' (module docstring).
    stratum : (U,) int64, each unit's attribute group as an index into ``layout.groups`` (the bootstrap's strata).
    size : (U,) int64, subjects per unit (1 for ``subjects``).
    counts : (U, C) float64, images per cell of one subject of the unit.
    representative : (U,) int64 for ``profiles``: one image of each unit (an index into the design's images); None for
        ``subjects``.
    """

    kind: str
    stratum: np.ndarray
    size: np.ndarray
    counts: np.ndarray
    representative: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.size)

    def members(self, stratum: int) -> np.ndarray:
        """The units of one stratum, in order: int64 array of shape (U_g,)."""
        return np.flatnonzero(self.stratum == stratum)

    @property
    def jackknife_weights(self) -> np.ndarray | None:
        """How many leave-one-subject-out values each unit stands for: ``size``, or None when every unit is one
        subject (the plain jackknife)."""
        return None if self.kind == "subjects" else self.size.astype(np.float64)


def subject_units(design: SubjectDesign) -> Units:
    """One unit per subject of ``design``, in its order."""
    n = len(design.subjects)
    return Units("subjects", design.subject_stratum, np.ones(n, dtype=np.int64), design.counts)


def profile_units(design: SubjectDesign, predictions: Sequence[Predicted]) -> Units:
    """Classes of alike images of a design whose subjects have one image each.

    predictions : every method's predictions (:class:`~benchmark.stats.cells.Predicted`: correctness and
    false-positive cells, (T, K_m, n_images) each). Two images are alike when they are in the same cell (hence group)
    and every method's every seed is right or wrong on both, task by task, and wrongly predicts the same declared
    class for both. Units are sorted by (stratum, cell, pattern), so each stratum's units are contiguous.
    """
    if not is_singleton(design):
        raise ValueError("profile_units: a subject has several images; profiles are for one image per subject")
    n_images = len(design.image_ids)
    stratum = design.subject_stratum[design.image_subject]
    correct = np.concatenate([p.correct.reshape(-1, n_images) for p in predictions], axis=0).T  # (n_images, bits)
    code = np.uint8 if design.layout.n_cells < 255 else np.dtype(">u4")  # the false-positive cell + 1 (0: none)
    false_cell = np.concatenate([(p.false_cell + 1).astype(code).reshape(-1, n_images) for p in predictions], axis=0).T
    key = np.concatenate([stratum[:, None].astype(">u4").view(np.uint8),
                          design.image_cell[:, None].astype(">u4").view(np.uint8),
                          np.packbits(correct, axis=1),
                          np.ascontiguousarray(false_cell).view(np.uint8)], axis=1)
    rows = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1]))).ravel()
    _, first, size = np.unique(rows, return_index=True, return_counts=True)  # sorted: stratum, cell, pattern
    counts = np.zeros((len(first), design.layout.n_cells))
    counts[np.arange(len(first)), design.image_cell[first]] = 1.0
    return Units("profiles", stratum[first].astype(np.int64), size.astype(np.int64), counts, first.astype(np.int64))


def is_singleton(design: SubjectDesign) -> bool:
    """Whether every subject of ``design`` has exactly one image (a design without person ids)."""
    return len(design.image_ids) == len(design.subjects)


def units_for(design: SubjectDesign, predictions: Sequence[Predicted]) -> Units:
    """The units an evaluation group resamples: profiles where every subject has one image, subjects otherwise."""
    return profile_units(design, predictions) if is_singleton(design) else subject_units(design)


def unit_sums(prediction: Predicted, design: SubjectDesign, units: Units, channels: Sequence[str]) -> Rates:
    """Per-unit numerators of each channel (of one of the unit's subjects; :func:`~benchmark.stats.cells.channel_sums`):
    channel -> (U, T, K, C), int64 for subjects, int8 for profiles (one image: every count is 0 or 1, and a million
    images' classes x tasks x seeds x cells stay small)."""
    if units.representative is None:
        return channel_sums(prediction, design, channels)
    n_tasks, n_seeds, _ = prediction.correct.shape
    shape = (len(units), n_tasks, n_seeds, design.layout.n_cells)
    unit = np.arange(len(units))[:, None, None]
    task, seed = np.arange(n_tasks)[None, :, None], np.arange(n_seeds)[None, None, :]
    out = {}
    for channel in channels:
        sums = np.zeros(shape, dtype=np.int8)
        if channel == "recall":
            cell = design.image_cell[units.representative][:, None, None]
            sums[unit, task, seed, cell] = prediction.correct[:, :, units.representative].transpose(2, 0, 1)
        elif channel == "fpr":
            cell = prediction.false_cell[:, :, units.representative].transpose(2, 0, 1)  # (U, T, K), -1: none
            hit = cell >= 0
            sums[np.broadcast_to(unit, hit.shape)[hit], np.broadcast_to(task, hit.shape)[hit],
                 np.broadcast_to(seed, hit.shape)[hit], cell[hit]] = 1
        else:
            raise ValueError(f"unknown channel {channel!r}")
        out[channel] = sums
    return out


def unit_totals(design: SubjectDesign, units: Units, channels: Sequence[str]) -> Rates:
    """Per-unit denominators of each channel (of one of the unit's subjects, from its images per cell;
    :func:`~benchmark.stats.cells.channel_totals`): channel -> (U, T, C) int64."""
    return counts_totals(units.counts, design.layout, len(design.tasks), channels)
