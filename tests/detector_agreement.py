"""Measure the torch port of dlib's face detector (``cnn_torch``) against dlib's own (``cnn``) on the test pictures.

Two measurements, each printing a JSON object (and writing it with ``--json PATH``):

``agreement``: the astronaut and the 100 LFW pictures of ``face_pictures`` (or the first ``--pictures`` of them),
chipped by both pipelines with the given settings; per picture and summarised: found by both or one, box IoU,
largest landmark distance (px), chip mean and largest absolute difference (grey levels).

``timing``: the first ``--pictures`` test pictures made FACES-sized (2835 x 3543 px JPEG), chipped from scratch
(decode, resize, detect, landmarks, chip, PNG; worker start-up included) by each detector with each number of worker
processes; wall-clock and CPU seconds per image and the ratios to dlib with the first number of workers.

Run from the repository root with the project's Python, e.g.
``python tests/detector_agreement.py agreement --upsample 1 --max-side 800 --workers 2 --json agreement.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from face_pictures import astronaut, lfw_photo  # noqa: E402

from benchmark.frozen.chips import Aligner, ChipSettings, resolve_workers  # noqa: E402
from benchmark.infra.processes import available_cores  # noqa: E402
from benchmark.tools import detector_bench


def measured_pictures(count: int | None = None) -> dict[str, np.ndarray]:
    """The astronaut, then LFW 0 .. 99 as ``face_pictures`` makes them; the first ``count`` (all when None)."""
    names = ["astronaut", *(f"lfw_{i:02d}" for i in range(100))][:count]
    return {name: astronaut() if name == "astronaut" else lfw_photo(int(name[4:])) for name in names}


_PAIR: tuple[Aligner, Aligner] | None = None


def _init(settings: ChipSettings) -> None:
    global _PAIR
    import torch

    torch.set_num_threads(1)
    _PAIR = (Aligner(settings), Aligner(ChipSettings(**{**settings.__dict__, "detector": "cnn_torch"})))


def _compare(item: tuple[str, np.ndarray]) -> detector_bench.Agreement:
    assert _PAIR is not None
    return detector_bench.agreement(dict([item]), *_PAIR)[0]


def measure_agreement(args: argparse.Namespace) -> dict:
    settings = ChipSettings(detector="cnn", upsample=args.upsample, max_side=args.max_side)
    pictures = measured_pictures(args.pictures)
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers, initializer=_init, initargs=(settings,)) as pool:
        rows = pool.map(_compare, pictures.items(), chunksize=1)
    return {"settings": {"reference": "cnn", "candidate": "cnn_torch", "upsample": args.upsample,
                         "max_side": args.max_side, "chip_size": settings.size, "padding": settings.padding},
            "summary": detector_bench.summarize(rows), "pictures": detector_bench.as_dicts(rows),
            "seconds": round(time.perf_counter() - start, 1)}


def measure_timing(args: argparse.Namespace) -> dict:
    pictures = [detector_bench.faces_sized(p) for p in measured_pictures(args.pictures).values()]
    workers = [resolve_workers(w) for w in args.workers]
    result: dict = {"pictures": len(pictures), "size": list(detector_bench.FACES_SIZE), "upsample": args.upsample,
                    "max_side": args.max_side, "cores": len(available_cores()), "load_before": os.getloadavg()[0],
                    "wall_s_per_image": {}, "cpu_s_per_image": {}}
    with tempfile.TemporaryDirectory() as folder:
        images = detector_bench.write_jpegs(pictures, Path(folder))
        for n in workers:
            for detector in args.detectors:
                settings = ChipSettings(detector=detector, upsample=args.upsample, max_side=args.max_side)
                timing = detector_bench.time_chips(images, settings, workers=n)
                key = f"{detector}, {n} worker(s)"
                result["wall_s_per_image"][key] = round(timing.wall_s / len(images), 3)
                result["cpu_s_per_image"][key] = round(timing.cpu_s / len(images), 3)
    result["load_after"] = os.getloadavg()[0]
    for kind in ("wall", "cpu"):
        per_image = result[f"{kind}_s_per_image"]
        base = per_image[f"cnn, {workers[0]} worker(s)"] if "cnn" in args.detectors else None
        if base:
            result[f"{kind}_speed_vs_cnn_first"] = {k: round(base / v, 2) for k, v in per_image.items()}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("agreement", "timing"):
        p = sub.add_parser(name)
        p.add_argument("--upsample", type=int, default=1)
        p.add_argument("--max-side", type=int, default=800)
        p.add_argument("--json", type=Path, default=None)
    sub.choices["agreement"].add_argument("--pictures", type=int, default=None, help="first N pictures (default all 101)")
    sub.choices["agreement"].add_argument("--workers", type=int, default=1)
    sub.choices["timing"].add_argument("--pictures", type=int, default=4)
    sub.choices["timing"].add_argument("--workers", type=int, nargs="+", default=[1, 0], help="0: one per core")
    sub.choices["timing"].add_argument("--detectors", nargs="+", default=["cnn", "cnn_torch"])
    args = parser.parse_args()
    result = measure_agreement(args) if args.what == "agreement" else measure_timing(args)
    text = json.dumps(result, sort_keys=True)
    if args.json:
        args.json.write_text(text + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "pictures"} if args.what == "agreement" else result,
                     sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
