"""Face chips on many processes and in shards: the same chips whatever the split; the torch detector's chips are dlib's."""

from __future__ import annotations

import json

import pytest
from face_pictures import DETECTABLE, NO_FACE_INDEX, astronaut, lfw_photo, save, write_faces

from benchmark.frozen import chips
from benchmark.frozen.chips import Aligner, ChipSettings, Shard
from benchmark.infra import processes
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file
from benchmark.tools import detector_bench

TORCH_FAST = ChipSettings(detector="cnn_torch", upsample=0, max_side=0)


def _images(folder, indices):
    out = {}
    for i in indices:
        path = save(lfw_photo(i), folder / f"{i:02d}.png")
        out[path.name] = (path, sha256_file(path))
    return out


def _tree(root):
    """Every file under the settings folder: relative path -> bytes."""
    base = root / TORCH_FAST.key()
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def test_chips_are_identical_from_one_process_two_processes_or_two_merged_shards(tmp_path, monkeypatch):
    images = _images(tmp_path / "raw", [*DETECTABLE[:4], NO_FACE_INDEX])
    one = chips.make_chips(images, dataset="faces", chips_dir=tmp_path / "one", settings=TORCH_FAST, num_workers=1, progress=False)
    two = chips.make_chips(images, dataset="faces", chips_dir=tmp_path / "two", settings=TORCH_FAST, num_workers=2, progress=False)
    for index in (0, 1):
        chips.make_chips(images, dataset="faces", chips_dir=tmp_path / "shards", settings=TORCH_FAST, num_workers=1,
                         progress=False, shard=Shard(index, 2))
    monkeypatch.setattr(Aligner, "find", lambda self, rgb: pytest.fail("the merge detected faces again"))
    merged = chips.make_chips(images, dataset="faces", chips_dir=tmp_path / "shards", settings=TORCH_FAST, progress=False)
    assert one == two == merged and one["09.png"].status == "no_face"
    assert _tree(tmp_path / "one") == _tree(tmp_path / "two") == _tree(tmp_path / "shards")


def test_a_shard_chips_every_nth_image_into_its_own_index(tmp_path):
    images = _images(tmp_path / "raw", DETECTABLE[:5])
    records = chips.make_chips(images, dataset="adfes", chips_dir=tmp_path / "chips", settings=TORCH_FAST,
                               num_workers=1, progress=False, shard=Shard(1, 3))
    assert sorted(records) == sorted(images)[1::3]
    written = json.loads(chips.index_path(tmp_path / "chips", TORCH_FAST, "adfes", Shard(1, 3)).read_text())
    assert written.keys() == records.keys() and written["01.png"]["chip"] == "adfes/01.png.png"
    assert not chips.index_path(tmp_path / "chips", TORCH_FAST, "adfes").exists()


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0"])
def test_a_shard_is_i_of_n_with_i_below_n(text):
    with pytest.raises(BenchmarkError, match=r"--shard .*expected i/n with 0 <= i < n") as info:
        Shard.parse(text)
    assert "\n" not in str(info.value)


def test_zero_detect_workers_means_one_per_core():
    assert chips.resolve_workers(0) == len(processes.available_cores()) >= 1 and chips.resolve_workers(3) == 3


def test_torch_detectors_chips_equal_dlibs_on_test_pictures():
    pictures = {"astronaut": astronaut(), **{f"lfw {i}": lfw_photo(i) for i in (0, 5, 17)}}
    rows = detector_bench.agreement(pictures, Aligner(ChipSettings(detector="cnn", upsample=0, max_side=0)), Aligner(TORCH_FAST))
    summary = detector_bench.summarize(rows)
    assert summary["found_by_both"] == 4 and summary["identical_boxes"] == 4
    assert (summary["max_landmark_px"], summary["max_chip_max_abs"]) == (0.0, 0)


def test_images_chips_command_runs_shards_and_the_next_run_merges_them(tmp_path, monkeypatch, capsys):
    import yaml

    from benchmark.cli import main

    write_faces(tmp_path / "raw" / "faces")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "data": {"source": "images", "input": "raw", "datasets": ["faces"],
                 "images": {"detector": "hog", "upsample": 0, "max_side": 0, "detect_workers": 1}},
        "train": {"splits": ["cv:faces"]}, "tracking": {"enabled": False}}))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data" / "chips" / ChipSettings(detector="hog", upsample=0, max_side=0).key()
    assert main(["images", "chips", "--shard", "0/2"]) == 0
    assert capsys.readouterr().out.strip() == "raw/faces (shard-0-of-2): 12 chips, 0 images without one (no face or unreadable)"
    assert len(json.loads((folder / "faces.shard-0-of-2.json").read_text())) == 12
    assert main(["images", "chips", "--shard", "1/2"]) == 0 and main(["images", "chips"]) == 0
    assert len(json.loads((folder / "faces.json").read_text())) == 24
    assert not list(folder.glob("faces.shard-*.json"))


def test_images_chips_command_rejects_a_bad_shard_with_one_line(tmp_path, monkeypatch, capsys):
    from benchmark.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("data:\n  source: images\n  input: raw\n")
    assert main(["images", "chips", "--shard", "3/3"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("--shard 3/3: expected i/n with 0 <= i < n, e.g. 0/4 ... 3/4") and "\n" not in err
