"""Real face pictures shipped with scikit-image (no download), laid out as FACES and ADFES folders for tests.

``skimage.data.astronaut()`` is Eileen Collins (a woman); ``skimage.data.lfw_subset()`` holds 100 grey 25 x 25 LFW
face crops (then 100 non-faces). A face crop is upscaled to 160 px and edge-padded to 280 px so dlib's detectors see
a face with some surroundings. Indices 4, 9, 13, 28, 59, 67, 68, 82 and 83 are skipped: dlib's HOG detector misses
them (9 is missed by the CNN detector too, so it serves as a picture with no detectable face).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from toy import EMOTIONS

HOG_MISSES = (4, 9, 13, 28, 59, 67, 68, 82, 83)
NO_FACE_INDEX = 9
DETECTABLE = tuple(i for i in range(100) if i not in HOG_MISSES)
FACES_CODES = {"anger": "a", "disgust": "d", "fear": "f", "happy": "h", "neutral": "n", "sad": "s"}
ADFES_NAMES = {"anger": "Anger", "disgust": "Disgust", "fear": "Fear", "happy": "Joy", "neutral": "Neutral", "sad": "Sadness"}


def astronaut() -> np.ndarray:
    """The astronaut picture, (512, 512, 3) uint8 RGB."""
    from skimage import data

    return data.astronaut()


def lfw_photo(index: int) -> np.ndarray:
    """LFW face ``index`` (0-99) as a (280, 280, 3) uint8 RGB picture."""
    from skimage import data

    face = (data.lfw_subset()[index] * 255).round().astype(np.uint8)
    big = np.asarray(Image.fromarray(face).resize((160, 160), Image.Resampling.BICUBIC))
    return np.repeat(np.pad(big, 60, mode="edge")[:, :, None], 3, axis=2)


def save(picture: np.ndarray, path: Path) -> Path:
    """Write ``picture`` as JPEG (quality 95) or PNG, by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture).save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else Image.fromarray(picture).save(path)
    return path


def faces_name(subject: int, age: str, gender: str, emotion: str, picture_set: str) -> str:
    """A FACES file name, e.g. ``001_y_f_h_a.jpg``."""
    return f"{subject:03d}_{age}_{gender}_{FACES_CODES[emotion]}_{picture_set}.jpg"


def adfes_name(subject: str, emotion: str) -> str:
    """An ADFES still's file name, e.g. ``F01-Joy-Apex.jpg`` or ``F01-Neutral.jpg``."""
    raw = ADFES_NAMES.get(emotion, emotion)
    return f"{subject}-Neutral.jpg" if raw == "Neutral" else f"{subject}-{raw}-Apex.jpg"


def write_faces(folder: Path, *, subjects: tuple[tuple[int, str, str], ...] = ((1, "y", "f"), (2, "o", "m")),
                sets: tuple[str, ...] = ("a", "b")) -> list[Path]:
    """A FACES-style folder: every subject x six emotions x sets, each a different LFW face (subject 1's first
    picture is the astronaut)."""
    written, faces = [], iter(DETECTABLE)
    for subject, age, gender in subjects:
        for emotion in EMOTIONS:
            for picture_set in sets:
                picture = astronaut() if not written else lfw_photo(next(faces))
                written.append(save(picture, folder / faces_name(subject, age, gender, emotion, picture_set)))
    return written


def write_adfes(folder: Path, *, subjects: tuple[str, ...] = ("F01", "M01"), extra: tuple[str, ...] = ("Contempt",)) -> list[Path]:
    """An ADFES-style folder: every subject x six shared emotions (+ ``extra`` emotions to be ignored)."""
    written, faces = [], iter(reversed(DETECTABLE))
    for subject in subjects:
        for emotion in (*EMOTIONS, *extra):
            written.append(save(lfw_photo(next(faces)), folder / adfes_name(subject, emotion)))
    return written
