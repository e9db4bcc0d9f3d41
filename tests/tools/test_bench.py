"""`benchmark bench`: the reference loop and the vectorised trainer timed side by side, printed and written as JSON
(times are reported, never asserted)."""

from __future__ import annotations

import json

from benchmark.cli import main


def test_bench_prints_per_model_seconds_and_their_ratio_and_writes_json(tmp_path, capsys):
    target = tmp_path / "bench.json"
    code = main(["bench", "--models", "3", "--reference-models", "1", "--epochs", "1", "--workers", "1",
                 "--json", str(target)])
    out = capsys.readouterr().out
    assert code == 0
    assert "reference loop:" in out and "vectorised trainer, cpu:" in out and "speed-up per model:" in out
    result = json.loads(target.read_text())
    assert result["models"] == 3 and result["reference_models"] == 1 and result["epochs"] == 1
    assert result["speedup"] == result["reference_seconds_per_model"] / result["vectorised_seconds_per_model"]
    # seed 0 is trained by both: the vectorised trainer reproduces the reference loop
    assert result["max_probability_difference"] < 1e-4 and result["argmax_agreement"] == 1.0
