"""The random draws of one evaluation group, produced in chunks that fit a memory budget: bootstrap multiplicities
of its units (:mod:`benchmark.stats.units`) and the units' exchanges of the permutation test.

Chunking never changes a number: numpy's generators produce the same stream whether an array is drawn at once or
row block by row block (integers included: PCG64 keeps the spare half of a 64-bit draw in its state), so a chunk is
the same rows of the same draws. What the budget bounds is the draws and products of one chunk (:data:`RESAMPLE_BYTES`
and :data:`EXCHANGE_BYTES` per unit and row); the per-method outputs (resamples x tasks x seeds x cells) are not
chunked: they do not grow with the data.

``subjects`` units draw exactly as the subject bootstrap always has: one generator per group
(``default_rng([seed, crc32(key)])``), every group's multiplicities in declared order (each (R, n_g) uniform
integers), then the exchanges (a (P, n) uniform array < 1/2). The resamples are produced group by group (a stratum's
draws only move its own cells), so the exchanges' starting point is known once the resamples have been drawn; asked
for first, the resamples are drawn once and discarded to find it.

``profiles`` units draw each stratum's class counts, a multinomial of the stratum's n_g images over its classes, in
two exact steps: a multinomial over the classes of at least :data:`SMALL_CLASS` images and one lump of the smaller
classes (generator ``<key>|resample|<g>``), then each of the lump's draws lands on one of the small classes' images
uniformly (``<key>|resample-small|<g>``), counted by class. Each class's exchanged images, Binomial(size, 1/2), are
the number of ones among ``size`` random bits for classes under :data:`BITS` images (``<key>|exchange``) and numpy's
binomial for larger ones (``<key>|exchange-large``). Every generator is read in order, one chunk after the other, so
chunks do not change these numbers either.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.stats.units import Units

__all__ = ["EXCHANGE_BYTES", "RESAMPLE_BYTES", "Draws", "group_rng", "rows_within"]

log = logging.getLogger(__name__)

#: bytes per drawn column and row a chunk holds at once: for resamples the drawn integers and their offsets (int64),
#: the multiplicities (int64) and their float32 copy for the products; for exchanges the uniform draws (float64) or
#: random bits (uint64) and their count, the exchange counts and their float32 copy
RESAMPLE_BYTES = 32
EXCHANGE_BYTES = 32
#: ``profiles``: classes of fewer images than this are drawn image by image (cheaper than one more multinomial
#: category: ~5 ns per uniform draw against ~150 ns per binomial); exchanges count random bits below 64 images
SMALL_CLASS = 16
BITS = 64
#: seconds between two progress lines of one pass over the draws
PROGRESS_SECONDS = 10.0


def group_rng(seed: int, key: str) -> np.random.Generator:
    """The generator of one evaluation group's (or one of its streams') draws: ``default_rng([seed, crc32(key)])``."""
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def rows_within(budget_bytes: int, columns: int, bytes_per_element: int, total: int) -> int:
    """How many rows of ``columns`` elements of ``bytes_per_element`` fit ``budget_bytes`` (at least 1, at most
    ``total``)."""
    return int(max(1, min(total, budget_bytes // max(1, columns * bytes_per_element))))


class _Progress:
    """INFO lines on a long pass (``done / total`` every :data:`PROGRESS_SECONDS`); silent on short ones."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total = what, total
        self.start = self.last = time.perf_counter()

    def advance(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last >= PROGRESS_SECONDS and done < self.total:
            self.last = now
            log.info("%s: %d of %d (%.0f s)", self.what, done, self.total, now - self.start)


def _chunk_rows(total: int, step: int) -> Iterator[slice]:
    for start in range(0, total, step):
        yield slice(start, min(total, start + step))


@dataclass
class Draws:
    """Bootstrap resamples and permutation exchanges of an evaluation group's units, in chunks.

    units : what is drawn. n_resamples, n_permutations : R and P. seed, key : the group's stream
    (:func:`group_rng`). budget_bytes : the most one chunk's draws and products may hold (module docstring).
    """

    units: Units
    n_resamples: int
    n_permutations: int
    seed: int
    key: str
    budget_bytes: int
    _exchange_state: dict[str, Any] | None = field(default=None, init=False, repr=False)

    def resamples(self) -> Iterator[tuple[int, slice, np.ndarray]]:
        """(stratum, rows, multiplicities) chunks: for each stratum in declared order, its units' multiplicities
        (int64, shape (len(rows), U_g), units in :meth:`Units.members` order) in every resample of ``rows``; rows
        cover 0 .. R in order. Each row of a stratum sums to its subjects."""
        units = self.units
        strata = [int(g) for g in np.unique(units.stratum)]
        progress = _Progress(f"{self.key}: bootstrap resamples x {len(strata)} strata", self.n_resamples * len(strata))
        rng = group_rng(self.seed, self.key) if units.kind == "subjects" else None
        for i, g in enumerate(strata):
            members = units.members(g)
            if rng is not None:
                draw: _SubjectDraw | _ProfileDraw = _SubjectDraw(rng, len(members))
            else:
                draw = _ProfileDraw(group_rng(self.seed, f"{self.key}|resample|{g}"),
                                    group_rng(self.seed, f"{self.key}|resample-small|{g}"), units.size[members])
            step = rows_within(self.budget_bytes, draw.columns, RESAMPLE_BYTES, self.n_resamples)
            for rows in _chunk_rows(self.n_resamples, step):
                yield g, rows, draw(rows.stop - rows.start)
                progress.advance(i * self.n_resamples + rows.stop)
        if rng is not None:
            self._exchange_state = rng.bit_generator.state

    def exchanges(self) -> Iterator[tuple[slice, np.ndarray]]:
        """(rows, exchanged) chunks: how many subjects of each unit a permutation exchanges (shape (len(rows), U);
        0/1 bool for ``subjects``, int64 counts for ``profiles``), rows covering 0 .. P in order."""
        units, progress = self.units, _Progress(f"{self.key}: permutations", self.n_permutations)
        if units.kind == "subjects":
            if self._exchange_state is None:
                for _ in self.resamples():  # the exchanges follow the resamples in the group's stream
                    pass
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = self._exchange_state
            exchange: _SubjectExchange | _ProfileExchange = _SubjectExchange(rng, len(units))
        else:
            exchange = _ProfileExchange(group_rng(self.seed, f"{self.key}|exchange"),
                                        group_rng(self.seed, f"{self.key}|exchange-large"), units.size)
        step = rows_within(self.budget_bytes, len(units), EXCHANGE_BYTES, self.n_permutations)
        for rows in _chunk_rows(self.n_permutations, step):
            yield rows, exchange(rows.stop - rows.start)
            progress.advance(rows.stop)


class _SubjectDraw:
    """The next rows of one group's subject multiplicities: uniform draws over its n subjects, counted per row."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng, self.n, self.columns = rng, n, n

    def __call__(self, rows: int) -> np.ndarray:
        n = self.n
        draws = self.rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
        return np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)


class _SubjectExchange:
    """The next rows of exchange flags: each subject with probability 1/2 (uniform draws below 1/2)."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng, self.n = rng, n

    def __call__(self, rows: int) -> np.ndarray:
        return self.rng.random((rows, self.n)) < 0.5


class _ProfileDraw:
    """The next rows of one stratum's class counts (module docstring): a multinomial over the large classes and the
    lump of small ones (``rng``), then the lump's draws spread over the small classes' images (``small_rng``)."""

    def __init__(self, rng: np.random.Generator, small_rng: np.random.Generator, sizes: np.ndarray) -> None:
        self.rng, self.small_rng = rng, small_rng
        small = sizes < SMALL_CLASS
        self.large, self.small = np.flatnonzero(~small), np.flatnonzero(small)
        self.total = int(sizes.sum())
        self.probabilities = np.append(sizes[self.large], sizes[self.small].sum()) / self.total
        self.image_class = np.repeat(np.arange(len(self.small)), sizes[self.small])  # small images -> small class
        self.columns = len(sizes) + len(self.image_class)

    def __call__(self, rows: int) -> np.ndarray:
        counts = self.rng.multinomial(self.total, self.probabilities, size=rows)
        out = np.empty((rows, len(self.large) + len(self.small)), dtype=np.int64)
        out[:, self.large] = counts[:, :-1]
        if len(self.small):
            lump = counts[:, -1]
            drawn = self.image_class[self.small_rng.integers(0, len(self.image_class), size=int(lump.sum()))]
            row = np.repeat(np.arange(rows), lump)
            n = len(self.small)
            out[:, self.small] = np.bincount(row * n + drawn, minlength=rows * n).reshape(rows, n)
        return out


class _ProfileExchange:
    """The next rows of exchanged images per class, Binomial(size, 1/2): the ones among ``size`` random bits for
    classes under :data:`BITS` images (``rng``), numpy's binomial for the others (``large_rng``)."""

    def __init__(self, rng: np.random.Generator, large_rng: np.random.Generator, sizes: np.ndarray) -> None:
        self.rng, self.large_rng = rng, large_rng
        few = sizes < BITS
        self.few, self.many = np.flatnonzero(few), np.flatnonzero(~few)
        self.masks = (np.uint64(1) << sizes[few].astype(np.uint64)) - np.uint64(1)
        self.many_sizes = sizes[~few]

    def __call__(self, rows: int) -> np.ndarray:
        out = np.empty((rows, len(self.few) + len(self.many)), dtype=np.int64)
        bits = self.rng.bit_generator.random_raw((rows, len(self.few)))
        out[:, self.few] = np.bitwise_count(bits & self.masks)
        if len(self.many):
            out[:, self.many] = self.large_rng.binomial(self.many_sizes, 0.5, size=(rows, len(self.many)))
        return out
