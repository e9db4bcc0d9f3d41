"""Face chips: dlib detection and alignment on real face pictures, per-image face problems, and the cache."""

from __future__ import annotations

import json

import numpy as np
from face_pictures import DETECTABLE, NO_FACE_INDEX, astronaut, lfw_photo, save

from benchmark.frozen import chips
from benchmark.frozen.chips import Aligner, ChipSettings
from benchmark.infra.hashing import sha256_file

FAST = ChipSettings(detector="hog", upsample=0, max_side=0)


def test_aligner_cuts_one_chip_of_the_configured_size_from_the_astronaut():
    chip, n_faces, box = Aligner(FAST)(astronaut())
    assert (chip.shape, chip.dtype, n_faces) == ((224, 224, 3), np.uint8, 1)
    assert box == [179, 83, 266, 170]


def test_cnn_detector_finds_the_astronaut():
    chip, n_faces, box = Aligner(ChipSettings(detector="cnn", upsample=0, max_side=0))(astronaut())
    assert (chip.shape, n_faces, box) == ((224, 224, 3), 1, [168, 69, 263, 164])


def test_aligner_resizes_the_longer_side_to_max_side_as_fairface():
    aligner = Aligner(ChipSettings(detector="hog", upsample=0, max_side=800))
    assert aligner.resize(np.zeros((300, 600, 3), np.uint8)).shape == (400, 800, 3)
    assert aligner.resize(np.zeros((1000, 500, 3), np.uint8)).shape == (800, 400, 3)


def test_aligner_finds_no_face_in_an_lfw_picture_dlib_misses():
    assert Aligner(FAST)(lfw_photo(NO_FACE_INDEX))[:2] == (None, 0)


def test_aligner_keeps_the_largest_of_several_faces():
    small, large = lfw_photo(DETECTABLE[0])[::2, ::2], lfw_photo(DETECTABLE[1])
    canvas = np.zeros((280, 420, 3), np.uint8)
    canvas[:, :280], canvas[70:210, 280:420] = large, small
    chip, n_faces, box = Aligner(FAST)(canvas)
    assert n_faces == 2 and box[2] < 280  # the kept box lies in the large face's half


def _images(tmp_path, pictures):
    out = {}
    for name, picture in pictures.items():
        path = save(picture, tmp_path / "raw" / name)
        out[name] = (path, sha256_file(path))
    return out


def test_make_chips_reports_no_face_and_multiple_faces_per_image(tmp_path):
    two = np.concatenate([lfw_photo(DETECTABLE[0]), lfw_photo(DETECTABLE[1])], axis=1)
    records = chips.make_chips(_images(tmp_path, {"a.png": lfw_photo(DETECTABLE[2]), "b.png": lfw_photo(NO_FACE_INDEX), "c.png": two}),
                               dataset="faces", chips_dir=tmp_path / "chips", settings=FAST, progress=False)
    assert {k: (r.status, r.n_faces) for k, r in records.items()} == {"a.png": ("ok", 1), "b.png": ("no_face", 0), "c.png": ("multiple_faces", 2)}
    assert records["b.png"].chip is None and (tmp_path / "chips" / FAST.key() / records["c.png"].chip).is_file()


def test_make_chips_reuses_cached_chips_and_redoes_changed_images(tmp_path, monkeypatch):
    images = _images(tmp_path, {"a.png": lfw_photo(DETECTABLE[0]), "b.png": lfw_photo(DETECTABLE[1])})
    chips.make_chips(images, dataset="adfes", chips_dir=tmp_path / "chips", settings=FAST, progress=False)
    calls = []
    real_call = Aligner.__call__
    monkeypatch.setattr(Aligner, "__call__", lambda self, rgb: calls.append(1) or real_call(self, rgb))
    chips.make_chips(images, dataset="adfes", chips_dir=tmp_path / "chips", settings=FAST, progress=False)
    assert calls == []
    images["b.png"] = (save(lfw_photo(DETECTABLE[2]), images["b.png"][0]), "changed")
    records = chips.make_chips(images, dataset="adfes", chips_dir=tmp_path / "chips", settings=FAST, progress=False)
    assert calls == [1] and records["b.png"].sha256 == "changed"
    index = json.loads(chips.index_path(tmp_path / "chips", FAST, "adfes").read_text())
    assert sorted(index) == ["a.png", "b.png"]


def test_make_chips_with_worker_processes_equals_in_process(tmp_path):
    images = _images(tmp_path, {f"{i}.png": lfw_photo(i) for i in DETECTABLE[:3]})
    one = chips.make_chips(images, dataset="faces", chips_dir=tmp_path / "c0", settings=FAST, num_workers=0, progress=False)
    two = chips.make_chips(images, dataset="faces", chips_dir=tmp_path / "c2", settings=FAST, num_workers=2, progress=False)
    assert one == two
    for record in one.values():
        assert (tmp_path / "c0" / FAST.key() / record.chip).read_bytes() == (tmp_path / "c2" / FAST.key() / record.chip).read_bytes()


def test_make_chips_marks_an_undecodable_file_unreadable(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"junk")
    records = chips.make_chips({"bad.jpg": (path, "x")}, dataset="faces", chips_dir=tmp_path / "chips", settings=FAST, progress=False)
    assert records["bad.jpg"].status == "unreadable"
