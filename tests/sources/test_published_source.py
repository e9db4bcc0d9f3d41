"""The published source: the authors' CSV format, pinning by sha256, and clear errors for missing or altered files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmark.core.design import shipped
from benchmark.core.labels import EMONET_EMOTIONS
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import published


def test_numpy_repr_arrays_spanning_lines_are_parsed():
    text = "[-27.821995  -25.415518  -20.420586  -17.111065   -2.9876575  -6.8898253\n  -5.270263  -19.117044 ]"
    values = published._parse_array(text, where="x", length=8)
    assert values[0] == pytest.approx(-27.821995)
    assert values[-1] == pytest.approx(-19.117044)


def test_array_with_wrong_length_is_rejected():
    with pytest.raises(BenchmarkError, match="expected 2 values, got 3"):
        published._parse_array("[0.1 0.2 0.7]", where="x", length=2)


def test_array_with_non_numeric_value_is_rejected():
    with pytest.raises(BenchmarkError, match="non-numeric value"):
        published._parse_array("[0.1 abc]", where="x", length=2)


def test_published_faces_table_has_the_real_design(published_tables):
    faces = published_tables["faces"].frame
    assert len(faces) == 2052
    assert faces["subject"].nunique() == 171
    assert faces.groupby("subject")["image_id"].count().eq(12).all()
    assert published_tables["faces"].emotion_classes == EMONET_EMOTIONS


def test_published_adfes_table_has_the_real_design(published_tables):
    adfes = published_tables["adfes"].frame
    assert len(adfes) == 132
    assert adfes.groupby("gender")["subject"].nunique().to_dict() == {"female": 10, "male": 12}


def test_gender_probabilities_come_from_the_fairface_logits_column(published_tables):
    first = published_tables["adfes"].frame.iloc[0]
    assert first["image_id"] == "F01-Anger-Apex.jpg"
    assert (first["p_male"], first["p_female"]) == pytest.approx((0.05145884, 0.94854116))


def test_checksum_mismatch_names_the_file_and_both_remedies(paper_outputs_dir, tmp_path):
    target = tmp_path / "adfes_emonet_fairface.csv"
    shutil.copy(paper_outputs_dir / "adfes_emonet_fairface.csv", target)
    with open(target, "a") as fh:
        fh.write("\n")
    with pytest.raises(BenchmarkError, match="adfes_emonet_fairface.csv: sha256 .* does not match the pinned .*local mirror via data.input"):
        published.load(shipped()["adfes"], tmp_path)


def test_missing_file_without_download_says_how_to_get_it(tmp_path):
    with pytest.raises(BenchmarkError, match="not found; set data.input to a local mirror .* data.published.download: true"):
        published.load(shipped()["faces"], tmp_path)


def test_download_failure_is_one_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(published.urllib.request, "urlopen", refuse)
    with pytest.raises(BenchmarkError, match="download failed .*network is unreachable.*local mirror"):
        published.load(shipped()["faces"], tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_csv_missing_a_column_is_rejected(paper_outputs_dir, tmp_path):
    import pandas as pd
    raw = pd.read_csv(paper_outputs_dir / "adfes_emonet_fairface.csv", dtype=str)
    path = tmp_path / "adfes.csv"
    raw.drop(columns=["emonet_logits"]).to_csv(path, index=False)
    with pytest.raises(BenchmarkError, match="missing column\\(s\\) emonet_logits"):
        published.parse_csv(path, shipped()["adfes"])


def test_csv_with_non_numeric_logits_is_rejected(paper_outputs_dir, tmp_path):
    import pandas as pd
    raw = pd.read_csv(paper_outputs_dir / "adfes_emonet_fairface.csv", dtype=str)
    raw.loc[3, "emonet_logits"] = "[1 2 3 4 5 6 7 x]"
    path = tmp_path / "adfes.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(BenchmarkError, match="row 5 column emonet_logits: non-numeric value"):
        published.parse_csv(path, shipped()["adfes"])


def test_logits_are_stored_in_emonet_order(published_tables):
    table = published_tables["faces"]
    row = table.frame.set_index("image_id").loc["125_y_f_a_a.jpg"]
    expected = np.array([-27.271568, -20.233507, -9.198435, -38.83592, -23.11659, -5.950656, -3.9230006, -19.165897])
    np.testing.assert_allclose(row[table.emotion_columns].to_numpy(dtype=float), expected)
