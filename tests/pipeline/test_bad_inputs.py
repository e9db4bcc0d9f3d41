"""Bad-input catalogue: each case exits non-zero with one line naming the thing and the fix, prints no traceback
(unless --debug), and changes no file: nothing half-written, no previous output replaced. Cases that meet an
unreachable service also answer within a generous bound (a hang, not a benchmark)."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from project import set_params
from toy import make_toy_table

from benchmark.cli import main
from benchmark.infra import memory, paths

#: generous upper bound for the answer about an unreachable service (the probe waits 5 s)
ANSWER_BOUND_S = 30.0

BASE_PARAMS = {
    "data": {"source": "table", "input": "tables", "datasets": ["faces", "adfes"]},
    "train": {"methods": ["uncorrected"], "splits": ["faces->adfes"]},
    "evaluate": {"reference": "uncorrected"},
    "tracking": {"enabled": False},
}


def _write_tables(root: Path, mutate: Callable | None = None, *, dataset: str = "faces", suffix: str = ".csv") -> None:
    folder = root / "tables"
    folder.mkdir(exist_ok=True)
    for name in ("faces", "adfes"):
        frame = make_toy_table(dataset=name, seed=len(name)).frame.drop(columns=["dataset"])
        if mutate is not None and name == dataset:
            frame = mutate(frame)
        frame.to_csv(folder / f"{name}.csv", index=False)


def _params(root: Path, **updates) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(BASE_PARAMS))
    set_params(root, updates)


def _set(column: str, row: int, value) -> Callable:
    def mutate(frame):
        frame = frame.copy()
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return mutate


@dataclass(frozen=True)
class Case:
    """A bad input: how to set it up (it may return what must stay alive while the command runs, e.g. a socket), the
    command, what the message must say, which outputs must not appear, and for unreachable services a time bound."""

    id: str
    setup: Callable[[Path], object]
    argv: list[str]
    expected: tuple[str, ...]
    absent: tuple[str, ...] = ()
    bound_s: float | None = None
    memory: int | None = None  # bytes of memory the machine is said to have available (budget cases)


def _files(root: Path) -> dict[Path, str]:
    """Every file under ``root`` (but the stage locks) with the sha256 of its bytes."""
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and paths.LOCKS_DIR.name not in p.relative_to(root).parts}


def _fetched(root: Path) -> None:
    """A good project whose fetch stage already ran."""
    _write_tables(root)
    _params(root)
    assert main(["-q", "fetch"]) == 0


CASES = [
    Case("unknown_source", lambda r: (_write_tables(r), _params(r, **{"data.source": "kaggle"})), ["fetch"],
         ("data.source 'kaggle' is unknown", "expected one of", "published"), ("data/outputs",)),
    Case("mistyped_section_key", lambda r: (_write_tables(r), _params(r, **{"data.sorce": "sim"})), ["fetch"],
         ("data.sorce: unknown key", "did you mean 'source'"), ("data/outputs",)),
    Case("mistyped_top_level_section", lambda r: (_write_tables(r), _params(r, **{"trian.seed": 1})), ["fetch"],
         ("trian: unknown key", "did you mean 'train'"), ("data/outputs",)),
    Case("out_of_range_seeds", lambda r: (_write_tables(r), _params(r, **{"train.n_seeds": 0})), ["train"],
         ("train.n_seeds: 0 is out of range", "[1, inf]"), ("results",)),
    Case("wrong_type", lambda r: (_write_tables(r), _params(r, **{"train.n_seeds": "ten"})), ["train"],
         ("train.n_seeds: expected an integer, got 'ten'",), ("results",)),
    Case("unknown_method", lambda r: (_write_tables(r), _params(r, **{"train.methods": ["uncorected"]})), ["train"],
         ("unknown method 'uncorected'", "did you mean 'uncorrected'"), ("results",)),
    Case("reference_not_run", lambda r: (_write_tables(r), _params(r, **{"evaluate.reference": "corrector"})), ["evaluate"],
         ("evaluate.reference 'corrector' must be one of train.methods",), ("reports/metrics.json",)),
    Case("unknown_dataset", lambda r: (_write_tables(r), _params(r, **{"data.datasets": ["faces", "ckplus"]})), ["fetch"],
         ("data.datasets has undeclared dataset 'ckplus'; declared: adfes, faces",), ("data/outputs",)),
    Case("invalid_yaml", lambda r: (r / "params.yaml").write_text("data: [unclosed\n"), ["fetch"],
         ("params.yaml: not valid YAML",), ("data/outputs",)),
    Case("missing_params_file", lambda r: None, ["fetch"],
         ("params file not found", "run from the project root"), ("data/outputs",)),
    Case("missing_table_file", lambda r: _params(r), ["fetch"],
         ("no faces.parquet or faces.csv",), ("data/outputs",)),
    Case("csv_missing_column", lambda r: (_write_tables(r, lambda f: f.drop(columns=["p_female"])), _params(r)), ["fetch"],
         ("faces.csv: missing column(s) p_female",), ("data/outputs/faces.parquet",)),
    Case("csv_non_numeric_logits", lambda r: (_write_tables(r, _set("emo_sad", 4, "high")), _params(r)), ["fetch"],
         ("tables/faces.csv line 6 column 'emo_sad': 'high' is not a number",), ("data/outputs/faces.parquet",)),
    Case("empty_probability", lambda r: (_write_tables(r, _set("p_male", 2, np.nan)), _params(r)), ["fetch"],
         ("tables/faces.csv line 4 column 'p_male': empty value; expected a number",), ("data/outputs/faces.parquet",)),
    Case("negative_probability", lambda r: (_write_tables(r, lambda f: f.assign(p_male=f["p_male"].where(f.index != 3, -0.2),
                                                                                  p_female=f["p_female"].where(f.index != 3, 1.2))),
                                            _params(r)), ["fetch"],
         ("faces.csv", "outside [0, 1]"), ("data/outputs/faces.parquet",)),
    Case("probabilities_not_summing_to_one", lambda r: (_write_tables(r, _set("p_male", 0, 0.2)), _params(r)), ["fetch"],
         ("p_male + p_female", "expected 1 within 0.001"), ("data/outputs/faces.parquet",)),
    Case("unknown_emotion_label", lambda r: (_write_tables(r, _set("emotion", 0, "bored")), _params(r)), ["fetch"],
         ("column 'emotion' has label(s) ['bored'] outside the declared emotions of faces",), ("data/outputs/faces.parquet",)),
    Case("empty_cell", lambda r: (_write_tables(r, lambda f: f[~((f["gender"] == "male") & (f["emotion"] == "sad"))]), _params(r)),
         ["fetch"], ("no image in cell (male, sad)",), ("data/outputs/faces.parquet",)),
    Case("duplicate_image_id", lambda r: (_write_tables(r, _set("image_id", 1, "m00_neutral_0.jpg")), _params(r)), ["fetch"],
         ("duplicate image id",), ("data/outputs/faces.parquet",)),
    Case("subject_with_two_genders", lambda r: (_write_tables(r, _set("gender", 0, "female")), _params(r)), ["fetch"],
         ("has images in two gender groups",), ("data/outputs/faces.parquet",)),
    Case("corrupt_outputs_parquet", lambda r: (_fetched(r), (r / "data/outputs/faces.parquet").write_bytes(b"PAR1garbage")),
         ["train"], ("faces.parquet: not a readable parquet file", "rerun `benchmark fetch`"), ("results",)),
    Case("train_before_fetch", lambda r: (_write_tables(r), _params(r)), ["train"],
         ("outputs table not found", "run `benchmark fetch`"), ("results",)),
    Case("evaluate_before_train", lambda r: _fetched(r), ["evaluate"],
         ("predictions not found", "run `benchmark train`"), ("reports/metrics.json",)),
    Case("corrupt_predictions", lambda r: (_fetched(r), (r / "results").mkdir(), (r / "results/predictions.parquet").write_bytes(b"x")),
         ["evaluate"], ("predictions.parquet: not a readable parquet file",), ("reports/metrics.json",)),
    Case("report_before_evaluate", lambda r: _fetched(r), ["report"],
         ("metrics.json: not found", "run `benchmark evaluate`"), ("reports/report.md", "reports/report.html")),
    Case("unreachable_tracking_uri", lambda r: (_fetched(r), main(["-q", "train"]),
                                               _params(r, **{"tracking.enabled": True,
                                                             "tracking.uri": "postgresql+psycopg2://u:pw@127.0.0.1:1/x"})),
         ["evaluate"], ("tracking.uri: MLflow tracking store", "u:***@127.0.0.1:1", "does not answer"),
         ("reports/metrics.json",), bound_s=ANSWER_BOUND_S),
]


# Round two (issue 15): unreachable services, silent coercion of users' text, params and scenario files.

def _faces_csv(root: Path, transform: Callable[[str], str | bytes]) -> None:
    """Good tables, then faces.csv's text replaced by ``transform(text)`` (bytes are written as they are)."""
    _write_tables(root)
    path = root / "tables" / "faces.csv"
    data = transform(path.read_text())
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def _on_line(number: int, edit: Callable[[str], str]) -> Callable[[str], str]:
    """A text transform that edits line ``number`` (1 = the header)."""
    def transform(text: str) -> str:
        lines = text.split("\n")
        lines[number - 1] = edit(lines[number - 1])
        return "\n".join(lines)
    return transform


def _faces_parquet(root: Path, mutate: Callable) -> None:
    """adfes.csv good, faces as a parquet file changed by ``mutate``."""
    _write_tables(root)
    frame = make_toy_table(dataset="faces", seed=len("faces")).frame.drop(columns=["dataset"])
    mutate(frame).to_parquet(root / "tables" / "faces.parquet")
    (root / "tables" / "faces.csv").unlink()


def _rename_column(old: str, new: str) -> Callable:
    def mutate(frame):
        return frame.set_axis([new if c == old else c for c in frame.columns], axis=1)
    return mutate


def _with_scenario_text(root: Path, extra: str) -> None:
    """The sim source reading a copy of the shipped paper scenario with ``extra`` appended."""
    (root / "scenario.yaml").write_text((REPO / "benchmark" / "scenarios" / "paper.yaml").read_text() + extra)
    _params(root, **{"data.source": "sim", "data.input": "scenario.yaml"})


def _with_unreachable(kind: str, url: str, *, stage: str) -> Callable[[Path], object]:
    """A fetched project (trained too, for evaluate) whose tracking store or study storage does not answer.

    ``url`` has ``{port}``; a URL for tune.storage when ``stage`` is tune, else for tracking.uri."""
    from unreachable import Unreachable

    def setup(root: Path) -> Unreachable:
        _fetched(root)
        if stage == "evaluate":
            assert main(["-q", "train"]) == 0
        service = Unreachable(kind)
        key = {"tune.storage": url.format(port=service.port)} if stage == "tune" else \
            {"tracking.enabled": True, "tracking.uri": url.format(port=service.port)}
        _params(root, **key)
        return service
    return setup


NEW_CASES = [
    Case("tracking_server_not_running", _with_unreachable("refusing", "http://127.0.0.1:{port}", stage="evaluate"),
         ["evaluate"], ("tracking.uri: MLflow tracking store 'http://127.0.0.1:", "does not answer (ConnectionRefusedError",
                        "start the server", "tracking.enabled: false"), ("reports/metrics.json",), ANSWER_BOUND_S),
    Case("tracking_server_silent", _with_unreachable("silent", "http://127.0.0.1:{port}", stage="evaluate"),
         ["evaluate"], ("tracking.uri: MLflow tracking store", "does not answer (TimeoutError: no answer within 5 s)"),
         ("reports/metrics.json",), ANSWER_BOUND_S),
    Case("tracking_database_dropping_packets",
         _with_unreachable("dropping", "postgresql+psycopg2://u:pw@127.0.0.1:{port}/x", stage="train"),
         ["train"], ("tracking.uri: MLflow tracking store 'postgresql+psycopg2://u:***@127.0.0.1:", "does not answer"),
         ("results",), ANSWER_BOUND_S),
    Case("tune_storage_silent", _with_unreachable("silent", "postgresql+psycopg2://u:pw@127.0.0.1:{port}/x", stage="tune"),
         ["tune", "--n-trials", "1"], ("tune.storage: Optuna storage 'postgresql+psycopg2://u:***@127.0.0.1:",
                                       "does not answer", "OPTUNA_STORAGE"), ("reports/tune",), ANSWER_BOUND_S),
    Case("csv_empty_subject", lambda r: (_write_tables(r, _set("subject", 3, "")), _params(r)), ["fetch"],
         ("tables/faces.csv line 5 column 'subject': empty value; every row needs a value in this column",), ("data/outputs",)),
    Case("csv_empty_image_id", lambda r: (_write_tables(r, _set("image_id", 0, "")), _params(r)), ["fetch"],
         ("tables/faces.csv line 2 column 'image_id': empty value",), ("data/outputs",)),
    Case("csv_whitespace_only_label", lambda r: (_write_tables(r, _set("emotion", 7, "   ")), _params(r)), ["fetch"],
         ("tables/faces.csv line 9 column 'emotion': empty value",), ("data/outputs",)),
    Case("csv_space_padded_subject", lambda r: (_write_tables(r, _set("subject", 2, "m00 ")), _params(r)), ["fetch"],
         ("tables/faces.csv line 4 column 'subject': 'm00 ' has leading or trailing spaces; expected 'm00'",),
         ("data/outputs",)),
    Case("csv_semicolon_delimited", lambda r: (_faces_csv(r, lambda t: t.replace(",", ";")), _params(r)), ["fetch"],
         ("tables/faces.csv: the header is one column 'image_id;subject;", "looks ';'-separated",
          "save it comma-separated"), ("data/outputs",)),
    Case("csv_duplicated_column", lambda r: (_write_tables(r, _rename_column("emo_fear", "emo_sad")), _params(r)),
         ["fetch"], ("tables/faces.csv: column 'emo_sad' appears twice in the header",), ("data/outputs",)),
    Case("csv_unnamed_column", lambda r: (_write_tables(r, lambda f: f.assign(**{"": 1})), _params(r)), ["fetch"],
         ("tables/faces.csv: column 15 of the header has no name",), ("data/outputs",)),
    Case("csv_row_with_an_extra_field", lambda r: (_faces_csv(r, _on_line(4, lambda line: line + ",0.5")), _params(r)),
         ["fetch"], ("tables/faces.csv line 4: 15 field(s), the header has 14",), ("data/outputs",)),
    Case("csv_row_with_a_missing_field", lambda r: (_faces_csv(r, _on_line(6, lambda line: line.rsplit(",", 1)[0])),
                                                    _params(r)),
         ["fetch"], ("tables/faces.csv line 6: 13 field(s), the header has 14",), ("data/outputs",)),
    Case("csv_utf16", lambda r: (_faces_csv(r, lambda t: t.encode("utf-16")), _params(r)), ["fetch"],
         ("tables/faces.csv: the file is UTF-16 text (byte-order mark FF FE); save it as UTF-8",), ("data/outputs",)),
    Case("csv_latin1", lambda r: (_faces_csv(r, lambda t: t.replace("m01", "M\u00fcller", 1).encode("latin-1")),
                                  _params(r)),
         ["fetch"], ("tables/faces.csv: not UTF-8 text (byte 0xFC at line", "save the file as UTF-8"), ("data/outputs",)),
    Case("csv_decimal_comma", lambda r: (_write_tables(r, _set("p_male", 1, "0,5")), _params(r)), ["fetch"],
         ("tables/faces.csv line 3 column 'p_male': '0,5' is not a number (a decimal comma? use '.')",),
         ("data/outputs",)),
    Case("csv_empty_file", lambda r: (_faces_csv(r, lambda t: ""), _params(r)), ["fetch"],
         ("tables/faces.csv: the file is empty",), ("data/outputs",)),
    Case("absurd_logit", lambda r: (_write_tables(r, _set("emo_happy", 4, 1e308)), _params(r)), ["fetch"],
         ("tables/faces.csv: image 'm00_sad_0.jpg' has emotion logit 1e+308 in column emo_happy", "+/-1e+06"),
         ("data/outputs",)),
    Case("parquet_missing_subject", lambda r: (_faces_parquet(r, _set("subject", 3, None)), _params(r)), ["fetch"],
         ("tables/faces.parquet row 4 column 'subject': missing value",), ("data/outputs",)),
    Case("table_in_two_formats", lambda r: (_faces_parquet(r, lambda f: f), _write_tables(r), _params(r)), ["fetch"],
         ("tables: both faces.parquet and faces.csv",), ("data/outputs",)),
    Case("params_key_given_twice", lambda r: (_write_tables(r), _params(r),
                                              (r / "params.yaml").write_text((r / "params.yaml").read_text()
                                                                             + "tracking:\n  enabled: true\n")),
         ["fetch"], ("params.yaml: not valid YAML (key 'tracking' appears twice (lines",), ("data/outputs",)),
    Case("params_not_utf8", lambda r: (_write_tables(r), _params(r),
                                       (r / "params.yaml").write_bytes("# J\u00fcrgen\n".encode("latin-1")
                                                                       + (r / "params.yaml").read_bytes())),
         ["fetch"], ("params.yaml: not UTF-8 text (byte 0xFC at line 1, column 4)",), ("data/outputs",)),
    Case("params_blank_name", lambda r: (_write_tables(r), _params(r, **{"tracking.experiment": "  "})), ["fetch"],
         ("tracking.experiment: empty value '  '",), ("data/outputs",)),
    Case("params_dataset_listed_twice", lambda r: (_write_tables(r), _params(r, **{"data.datasets": ["faces", "faces"]})),
         ["fetch"], ("data.datasets: 'faces' is listed twice",), ("data/outputs",)),
    Case("scenario_key_given_twice", lambda r: _with_scenario_text(r, "name: another\n"), ["fetch"],
         ("scenario.yaml: not valid YAML (key 'name' appears twice",), ("data/outputs",)),
]
CASES += NEW_CASES


# Round three (issue 21): datasets named where they are read, budgets beyond this machine's memory, stored files
# that are not what they claim to be. A budget case fixes the memory available (``memory``), so its answer does not
# depend on the machine the tests run on.

GIB = 2**30
EVALUATED_PARAMS = {"train.methods": ["uncorrected", "corrector"], "train.n_seeds": 1, "train.corrector.epochs": 2,
                    "evaluate.n_resamples": 50, "evaluate.n_permutations": 50, "evaluate.contrasts": [],
                    "power.scenario": "paper", "power.replicates": 10, "power.truth_scale": 2, "power.rule_resamples": 100,
                    "tune.space.epochs": [2, 3]}
_BUILT: dict[str, Path] = {}


def _evaluated(root: Path) -> None:
    """A good project whose fetch, train, evaluate, power and tune stages ran (built once, then copied per case)."""
    if "evaluated" not in _BUILT:
        build = Path(tempfile.mkdtemp(prefix="bad-inputs-evaluated-"))
        atexit.register(shutil.rmtree, build, ignore_errors=True)
        here = Path.cwd()
        os.chdir(build)
        try:
            _write_tables(build)
            _params(build, **EVALUATED_PARAMS)
            for argv in (["fetch"], ["train"], ["evaluate"], ["power"],
                         ["tune", "--n-trials", "1", "--jobs", "1", "--storage", "sqlite:///reports/tune/study.db"]):
                assert main(["-q", *argv]) == 0, argv
        finally:
            os.chdir(here)
        _BUILT["evaluated"] = build
    shutil.copytree(_BUILT["evaluated"], root, dirs_exist_ok=True)


def _write(relative: str, data: bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return setup


def _evaluated_then(*steps: Callable[[Path], object]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        _evaluated(root)
        for step in steps:
            step(root)
    return setup


def _set_params(**updates) -> Callable[[Path], None]:
    """Change keys of the project's own params.yaml (dotted keys, :func:`project.set_params`)."""
    def setup(root: Path) -> None:
        set_params(root, updates)
    return setup


def _other_programs_parquet(relative: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        pd.DataFrame({"x": [1, 2]}).to_parquet(root / relative)
    return setup


NOT_A_DATABASE = b"not a database, whatever its name says\n"
GARBAGE = b"\x00\x01 not what the file name claims\n"

ISSUE_21_CASES = [
    Case("tune_split_to_an_undeclared_dataset", lambda r: (_write_tables(r), _params(r, **{"tune.split": "faces->ckplus"})),
         ["tune", "--n-trials", "1"], ("tune.split: 'faces->ckplus' names dataset 'ckplus', which is not declared; "
                                       "declared: adfes, faces",), ("reports/tune", "optuna.db")),
    Case("cv_folds_of_an_undeclared_dataset", lambda r: (_write_tables(r), _params(r, **{"train.cv.folds": {"face": 5}})),
         ["train"], ("train.cv.folds names dataset 'face', which is not declared",), ("results",)),
    Case("evaluate_resamples_beyond_memory", _evaluated_then(_set_params(**{"evaluate.n_resamples": 100_000_000_000})),
         ["evaluate"], ("evaluate.n_resamples: 100,000,000,000 makes the statistics of", "more than the 4.0 GiB this "
                        "machine has available; lower evaluate.n_resamples to at most about"), (), ANSWER_BOUND_S, 4 * GIB),
    # permutations are drawn in chunks (their number costs time, not memory); a chunk larger than the machine is refused
    Case("evaluate_chunk_beyond_memory",
         _evaluated_then(_set_params(**{"evaluate.n_permutations": 10_000_000_000,
                                        "evaluate.memory_budget_mb": 10_000_000})), ["evaluate"],
         ("evaluate.memory_budget_mb: 10,000,000 makes the statistics of", "lower evaluate.memory_budget_mb or"), (),
         ANSWER_BOUND_S, 4 * GIB),
    Case("power_replicates_beyond_memory",
         _evaluated_then(_set_params(**{"power.replicates": 100_000, "train.splits": ["adfes->faces"]})), ["power"],
         ("power.replicates: 100,000 makes the power simulation of faces need about",), (), ANSWER_BOUND_S, 4 * GIB),
    Case("power_permutations_beyond_memory", _evaluated_then(_set_params(**{"evaluate.n_permutations": 10**9})),
         ["power"], ("evaluate.n_permutations: 1,000,000,000 makes the power simulation of",), (), ANSWER_BOUND_S,
         4 * GIB),
    Case("corrector_network_beyond_memory",
         _evaluated_then(_set_params(**{"train.corrector.width": 4096, "train.corrector.depth": 16})), ["train"],
         ("train.corrector.width: 4,096 makes the corrector's networks of split faces->adfes need about",), (),
         ANSWER_BOUND_S, 2 * GIB),
    Case("corrector_batches_beyond_memory", _evaluated_then(_set_params(**{"train.corrector.batch_size": 65536,
                                                                          "train.corrector.width": 1024})),
         ["train"], ("train.corrector.batch_size: 65,536 makes the corrector's networks", "lower "
                     "train.corrector.batch_size to at most about"), (), ANSWER_BOUND_S, 1 * GIB),
    Case("tune_trials_beyond_memory", _evaluated, ["tune", "--n-trials", "1000000000", "--jobs", "1"],
         ("--n-trials (the DVC stage's tune.pipeline_trials): 1,000,000,000 makes study 'corrector'",), ("optuna.db",),
         ANSWER_BOUND_S, 4 * GIB),
    Case("tune_space_beyond_memory", _evaluated_then(_set_params(**{"tune.space.width": [8, 1024],
                                                                   "tune.space.batch_size": [16, 4096]})),
         ["tune", "--n-trials", "2", "--jobs", "1"], ("tune.space.batch_size: 4,096 makes study 'corrector'",),
         ("optuna.db",), ANSWER_BOUND_S, GIB // 2),
    Case("mlflow_store_not_a_database", _evaluated_then(_write("mlflow.db", NOT_A_DATABASE),
                                                        _set_params(**{"tracking.enabled": True})), ["evaluate"],
         ("tracking.uri: MLflow tracking store 'sqlite:////", "/mlflow.db is not an SQLite database",
          "move the file away"), (), ANSWER_BOUND_S),
    Case("mlflow_store_not_a_database_train", _evaluated_then(_write("mlflow.db", NOT_A_DATABASE),
                                                              _set_params(**{"tracking.enabled": True})), ["train"],
         ("mlflow.db is not an SQLite database",), (), ANSWER_BOUND_S),
    Case("optuna_store_not_a_database", _evaluated_then(_write("optuna.db", NOT_A_DATABASE)),
         ["tune", "--n-trials", "1"], ("tune.storage: Optuna storage 'sqlite:///optuna.db': optuna.db is not an SQLite "
                                       "database",), (), ANSWER_BOUND_S),
    Case("audit_table_not_parquet", _evaluated_then(_write("results/audit.parquet", GARBAGE)), ["report"],
         ("results/audit.parquet: not a readable parquet file", "rerun `benchmark evaluate`"), ("reports/report.md",)),
    Case("stats_table_of_another_program", _evaluated_then(_other_programs_parquet("results/stats.parquet")),
         ["report"], ("results/stats.parquet: no column(s) split", "not a file written by `benchmark evaluate`"),
         ("reports/report.md",)),
    Case("power_json_not_json", _evaluated_then(_write("results/power.json", GARBAGE)), ["report"],
         ("results/power.json: not a readable JSON file", "rerun `benchmark power`"), ("reports/report.md",)),
    Case("best_params_not_yaml", _evaluated_then(_write("reports/tune/best_params.yaml", b"params: [\n")), ["report"],
         ("reports/tune/best_params.yaml: not a readable YAML file", "rerun `benchmark tune`"), ("reports/report.md",)),
    Case("best_params_of_another_program", _evaluated_then(_write("reports/tune/best_params.yaml", b"a: 1\n")),
         ["report"], ("reports/tune/best_params.yaml: no study",), ("reports/report.md",)),
    Case("trials_csv_not_text", _evaluated_then(_write("reports/tune/trials.csv", b"\xff\xfe\x00garbage")), ["report"],
         ("reports/tune/trials.csv: the file is UTF-16 text", "delete it and rerun `benchmark tune`"),
         ("reports/report.md",)),
    Case("importances_not_json", _evaluated_then(_write("reports/tune/importances.json", GARBAGE)), ["report"],
         ("reports/tune/importances.json: not a readable JSON file",), ("reports/report.md",)),
    Case("outputs_table_not_parquet_at_report", _evaluated_then(_write("data/outputs/faces.parquet", GARBAGE)),
         ["report"], ("data/outputs/faces.parquet: not a readable parquet file",), ("reports/report.md",)),
    Case("lock_file_not_text", _evaluated_then(_write("constraints.txt", b"\xff\xfe garbage")), ["report"],
         ("constraints.txt: the file is UTF-16 text", "rerun `make lock`"), ("reports/report.md",)),
]
CASES += ISSUE_21_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line_and_changes_no_file(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    alive = case.setup(tmp_path)
    if case.memory is not None:
        monkeypatch.setattr(memory, "available_bytes", lambda: case.memory)
    before = _files(tmp_path)
    capsys.readouterr()
    started = time.monotonic()
    try:
        code = main(case.argv)
    finally:
        seconds = time.monotonic() - started
        if hasattr(alive, "close"):
            alive.close()
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    for text in case.expected:
        assert text in err, (text, err)
    assert ":pw@" not in err  # credentials never printed
    for path in case.absent:
        assert not (tmp_path / path).exists(), path
    assert _files(tmp_path) == before  # nothing written, replaced or left half-written
    if case.bound_s is not None:
        assert seconds < case.bound_s, f"answered after {seconds:.1f} s"


def test_debug_shows_the_traceback_for_a_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _params(tmp_path, **{"data.source": "kaggle"})
    assert main(["--debug", "fetch"]) == 1
    assert "Traceback" in capsys.readouterr().err


# Cases of the images source and dataset archives: the file-by-file warnings come first, then the one error line.

def _images_project(root: Path, **images) -> None:
    from face_pictures import write_faces

    write_faces(root / "raw" / "faces")
    settings = {"detector": "hog", "num_workers": 0, "detect_workers": 1, **images}
    params = {"data": {"source": "images", "input": "raw", "datasets": ["faces"], "images": settings},
              "train": {"splits": ["cv:faces"]}, "tracking": {"enabled": False}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _bad_name(root: Path) -> None:
    _images_project(root)
    first = next((root / "raw" / "faces").glob("*.jpg"))
    (root / "raw" / "faces" / "portrait.jpg").write_bytes(first.read_bytes())


def _truncated_jpeg(root: Path) -> None:
    _images_project(root)
    victim = sorted((root / "raw" / "faces").glob("*.jpg"))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])


def _wrong_architecture(root: Path) -> None:
    import torch
    import torchvision

    _images_project(root, fairface_weights="models/resnet18.pt", emotion_model="fer")
    (root / "models").mkdir()
    torch.save(torchvision.models.resnet18().state_dict(), root / "models" / "resnet18.pt")


def _escaping_archive(root: Path) -> None:
    import zipfile

    _params(root)
    with zipfile.ZipFile(root / "faces.zip", "w") as zf:
        zf.writestr("faces/001_y_f_a_a.jpg", b"x")
        zf.writestr("../../evil.txt", b"owned")


def _tampered_published(root: Path) -> None:
    import shutil

    from conftest import PAPER_OUTPUTS

    (root / "mirror").mkdir()
    for name in ("faces_emonet_fairface.csv", "adfes_emonet_fairface.csv"):
        shutil.copy(PAPER_OUTPUTS / name, root / "mirror" / name)
    with open(root / "mirror" / "adfes_emonet_fairface.csv", "a") as fh:
        fh.write("\n")
    _params(root, **{"data.source": "published", "data.input": "mirror"})


IMAGE_CASES = [
    Case("image_with_a_bad_name_strict", _bad_name, ["images", "manifest", "--strict"],
         ("raw/faces", "portrait.jpg", "does not follow the faces scheme"), ()),
    Case("truncated_jpeg_strict", _truncated_jpeg, ["images", "manifest", "--strict"],
         ("001_y_f_a_a.jpg", "truncated"), ()),
    Case("weights_of_the_wrong_architecture", _wrong_architecture, ["fetch"],
         ("data.images.fairface_weights", "resnet18.pt", "missing keys"), ("data/outputs/faces.parquet",)),
    Case("unknown_frozen_model", lambda r: _images_project(r, gender_model="clip"), ["fetch"],
         ("data.images.gender_model", "clip"), ("data/outputs",)),
    Case("archive_member_escaping_the_target", _escaping_archive, ["images", "import", "faces.zip", "--dataset", "faces"],
         ("faces.zip: member '../../evil.txt' would be written outside the target folder",), ("tables/faces", "../evil.txt")),
    Case("not_an_archive", lambda r: (_params(r), (r / "faces.zip").write_text("plain text")),
         ["images", "import", "faces.zip", "--dataset", "faces"], ("not a zip or tar archive",), ("tables/faces",)),
]


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c.id for c in IMAGE_CASES])
def test_bad_image_input_ends_in_one_error_line_naming_the_file(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    case.setup(tmp_path)
    capsys.readouterr()
    code = main(case.argv)
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert code != 0
    assert last.startswith("error: "), err
    assert "Traceback" not in err
    for text in case.expected:
        assert text in last, (text, last)
    for path in case.absent:
        assert not (tmp_path / path).exists(), path


def test_tampered_published_file_is_refused_through_the_cli(tmp_path, monkeypatch, capsys, paper_outputs_dir):
    monkeypatch.chdir(tmp_path)
    _tampered_published(tmp_path)
    assert main(["fetch"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: mirror/adfes_emonet_fairface.csv: sha256") and "\n" not in err
    assert not (tmp_path / "data" / "outputs").exists()


def test_a_clean_archive_is_unpacked_into_the_dataset_folder(tmp_path, monkeypatch):
    import zipfile

    monkeypatch.chdir(tmp_path)
    _params(tmp_path)
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as zf:
        zf.writestr("001_y_f_a_a.jpg", b"x")
    assert main(["images", "import", "faces.zip", "--dataset", "faces"]) == 0
    assert (tmp_path / "tables" / "faces" / "001_y_f_a_a.jpg").read_bytes() == b"x"
