"""Print what the two bundled models predict for scikit-image's real face pictures (a Markdown table for docs/IMAGES.md).

Pictures: the astronaut (Eileen Collins) and the first LFW faces that dlib's HOG detector finds, laid out as in the
tests (tests/face_pictures.py). Chips: HOG detector, no upsampling, no resize, 224 px, padding 0.25.
Run: .venv/bin/python scripts/bundled_predictions.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the shared test pictures

from face_pictures import DETECTABLE, astronaut, lfw_photo  # noqa: E402

from benchmark.frozen import bundled  # noqa: E402
from benchmark.frozen.chips import Aligner, ChipSettings  # noqa: E402
from benchmark.frozen.extract import prepare_chip  # noqa: E402

N_LFW = 6


def main() -> None:
    aligner = Aligner(ChipSettings(detector="hog", upsample=0, max_side=0))
    gender, emotion = bundled.load_agegender(), bundled.load_fer()
    pictures = [("astronaut", astronaut())] + [(f"LFW {i}", lfw_photo(i)) for i in DETECTABLE[:N_LFW]]
    print("| picture | agegender P(female) | fer top class (P) | fer second (P) |")
    print("|---|---|---|---|")
    for name, picture in pictures:
        chip = aligner(picture)[0]
        with torch.inference_mode():
            g = gender.predict(torch.from_numpy(prepare_chip(chip, gender.input_spec, chip_padding=0.25))[None])["scores"][0]
            logits = emotion.predict(torch.from_numpy(prepare_chip(chip, emotion.input_spec, chip_padding=0.25))[None])["scores"][0]
        p_female = float(g[gender.classes.index("female")])
        probs = torch.softmax(logits, 0)
        top = probs.argsort(descending=True)[:2].tolist()
        print(f"| {name} | {p_female:.3f} | {emotion.classes[top[0]]} ({probs[top[0]]:.3f}) | {emotion.classes[top[1]]} ({probs[top[1]]:.3f}) |")


if __name__ == "__main__":
    main()
