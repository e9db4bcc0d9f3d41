"""`benchmark doctor`: what is present and what is missing on this machine, each with its fix."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark.core.settings import Settings

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "pyarrow", "scipy", "mlflow", "dvc", "optuna", "click", "matplotlib")


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: ``ok`` is True (present), False (missing) or None (informational)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {True: "ok     ", False: "MISSING", None: "info   "}[self.ok]
        return f"[{mark}] {self.name}: {self.detail}" + (f"  -> {self.fix}" if self.fix and self.ok is False else "")


def check_versions(settings: Settings) -> list[Check]:
    """Python and the stack's package versions."""
    checks = [Check("python", None, platform.python_version())]
    for name in PACKAGES:
        try:
            checks.append(Check(name, True, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(name, False, "not installed", "make setup (or pip install -e '.[test]')"))
    return checks


def check_gpu(settings: Settings) -> list[Check]:
    """CUDA device, if any (the benchmark runs on the CPU without one)."""
    import torch

    if torch.cuda.is_available():
        return [Check("gpu", True, f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})")]
    return [Check("gpu", None, "no CUDA device; everything runs on the CPU (the images source is slower)")]


def check_data(settings: Settings) -> list[Check]:
    """The fetch stage's input for the configured source."""
    path = Path(settings.data.input)
    source = settings.data.source
    if path.exists():
        return [Check(f"data.input ({source})", True, str(path))]
    fixes = {"sim": "set data.input to a scenario file, e.g. benchmark/scenarios/paper.yaml",
             "published": "copy the authors' CSVs there (a local mirror) or set data.published.download: true",
             "images": "put the licensed images under it (see docs/IMAGES.md) and `dvc add` it"}
    return [Check(f"data.input ({source})", False, f"{path} does not exist", fixes.get(source, "fix data.input"))]


def check_weights(settings: Settings) -> list[Check]:
    """FairFace and EmoNet weights for the images source (with their sha256), or that bundled models need none."""
    from benchmark.infra.hashing import sha256_file

    images = settings.data.images
    checks = []
    for model, key, path in (("fairface", "fairface_weights", images.fairface_weights),
                             ("emonet", "emonet_weights", images.emonet_weights)):
        used = model in (images.gender_model, images.emotion_model) and settings.data.source == "images"
        if Path(path).exists():
            checks.append(Check(f"{model} weights", True, f"{path} (sha256 {sha256_file(path)[:16]}...)"))
        else:
            checks.append(Check(f"{model} weights", False if used else None,
                                f"{path} not found" + ("" if used else " (not needed by the current data.source and models)"),
                                f"obtain the licensed weights, put them at data.images.{key} and `dvc add models`; "
                                f"or use the bundled agegender / fer models"))
    return checks


def check_tracking(settings: Settings) -> list[Check]:
    """The MLflow tracking store in force."""
    from benchmark.experiment import tracking
    from benchmark.infra.errors import BenchmarkError

    uri = tracking.tracking_uri(settings.tracking)
    if not settings.tracking.enabled:
        return [Check("mlflow tracking", None, "disabled (tracking.enabled: false)")]
    try:
        tracking.setup(settings.tracking)
    except BenchmarkError as err:
        return [Check("mlflow tracking", False, str(err), "fix tracking.uri or MLFLOW_TRACKING_URI")]
    return [Check("mlflow tracking", True, f"{uri} (experiment {settings.tracking.experiment!r}); browse: "
                  "benchmark ui")]


def check_tune_storage(settings: Settings) -> list[Check]:
    """The Optuna storage that `benchmark tune` uses (a database server is probed; tables are never created)."""
    import sqlalchemy

    from benchmark.infra.errors import BenchmarkError
    from benchmark.infra.probes import check_study_storage
    from benchmark.infra.probes import redact_url as redact

    url = settings.tune.storage
    shown = redact(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception as err:  # not a SQLAlchemy URL
        return [Check("optuna storage", False, f"{shown}: {type(err).__name__}: {str(err).splitlines()[0][:120]}",
                      "fix tune.storage (or --storage)")]
    if parsed.get_backend_name() == "sqlite":
        folder = Path(parsed.database or ".").resolve().parent
        return [Check("optuna storage", folder.is_dir(),
                      f"{shown} ({'exists' if Path(parsed.database or '').exists() else 'created on first use'})",
                      f"create the folder {folder}")]
    try:
        check_study_storage(url)
    except BenchmarkError as err:
        return [Check("optuna storage", False, str(err), "fix tune.storage (or --storage) or start the database server")]
    return [Check("optuna storage", True, shown)]


def check_tools(settings: Settings) -> list[Check]:
    """Command-line tools some optional features use."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return [Check("chromium (browser tests)", bool(found) or None, found or "not found; the browser tests skip",
                  "apt-get install -y chromium")]


CHECKS: tuple[Callable[[Settings], list[Check]], ...] = (check_versions, check_gpu, check_data, check_weights, check_tracking,
                                                  check_tune_storage,
                                                  check_tools)


def run_checks(settings: Settings) -> list[Check]:
    """All checks, in order."""
    return [check for fn in CHECKS for check in fn(settings)]
