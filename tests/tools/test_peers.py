"""`benchmark peers`: Fairlearn's MetricFrame bootstrap and the project's statistics timed on the same predictions
with the same resamples, printed and written as JSON (times are reported, never asserted)."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.infra.optional import available

pytestmark = pytest.mark.skipif(not available("fairlearn"), reason="optional extra 'fairness' not installed")


def test_peers_time_both_tools_on_each_dataset_and_their_cells_agree(tmp_path, capsys):
    target = tmp_path / "peers.json"
    assert main(["peers", "--resamples", "4", "--repeats", "1", "--json", str(target)]) == 0
    points = json.loads(target.read_text())
    assert [p["dataset"] for p in points] == ["faces", "adfes"]
    faces = points[0]
    assert (faces["images"], faces["subjects"], faces["resamples"]) == (2052, 171, 4)
    for p in points:
        assert p["fairlearn_seconds"] > 0 and p["ours_seconds"] > 0
        assert p["ratio"] == p["fairlearn_seconds"] / p["ours_seconds"]
        assert p["cpu_ratio"] == p["fairlearn_cpu_seconds"] / p["ours_cpu_seconds"]
        assert p["cell_agreement"] < 1e-6  # the same predictions give the same cell accuracies in both tools
    out = capsys.readouterr().out
    assert "Fairlearn MetricFrame" in out and "ours" in out and out.count("x); cell accuracies agree") == 2


def test_peers_on_the_published_outputs_reads_the_authors_csvs(paper_outputs_dir, tmp_path):
    target = tmp_path / "peers.json"
    assert main(["peers", "--resamples", "2", "--repeats", "1", "--published", str(paper_outputs_dir),
                 "--json", str(target)]) == 0
    points = json.loads(target.read_text())
    assert all(p["source"] == "published" for p in points)
    assert points[0]["images"] == 2052 and points[1]["subjects"] == 22
