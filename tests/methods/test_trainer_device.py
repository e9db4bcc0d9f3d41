"""The corrector trainer on a device: the CUDA path's code run on the CPU gives the CPU trainer's weights bit for bit
(always tested); on a GPU the same seeds give the CPU's predictions within :data:`GPU_TOLERANCE` (tested when torch
sees one); ``train.device`` and ``benchmark bench --device``."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmark.core.settings import CorrectorSettings
from benchmark.infra.errors import BenchmarkError
from benchmark.methods import minibatches
from benchmark.methods.device import resolve_device
from benchmark.methods.network import Architecture, ModelRandomness, TrainingData, Weights, n_batches, predict
from benchmark.methods.trainer import train_many
from benchmark.tools import bench

#: the most any class probability of a network trained on CUDA may differ from the same seed's on the CPU
#: (float32 sums in another order; the reference loop and the CPU trainer differ by 6e-7 after 500 epochs)
GPU_TOLERANCE = 1e-4
FEW_EPOCHS = CorrectorSettings(epochs=4)
SETTINGS = [
    FEW_EPOCHS,
    replace(FEW_EPOCHS, dropout=0.0),
    replace(FEW_EPOCHS, depth=1, width=7, attribute_weight=0.8, lr=3e-3, batch_size=20, dropout=0.35),
    replace(FEW_EPOCHS, depth=3, width=16, batch_size=333),
]
SETTING_IDS = ["paper", "no_dropout", "one_layer", "three_layers_full_batch"]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")
without_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path; this machine has a GPU")


def arch_of(settings: CorrectorSettings) -> Architecture:
    return Architecture(8, settings.depth, settings.width, n_attribute_inputs=2, n_groups=2)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return bench.synthetic_data(333)


def subsets(data: TrainingData, sizes: tuple[int, ...]) -> list[TrainingData]:
    return [TrainingData(data.x[:n], data.attribute[:n], data.emotion[:n]) for n in sizes]


#: ragged: 11, 8, 2, 8 and 4 batches of 32 per epoch
RAGGED = (333, 250, 33, 250, 100)


def assert_same_weights(a: list[Weights], b: list[Weights]) -> None:
    for wa, wb in zip(a, b, strict=True):
        for (w1, b1), (w2, b2) in zip(wa.layers, wb.layers, strict=True):
            np.testing.assert_array_equal(w1, w2)
            np.testing.assert_array_equal(b1, b2)


@pytest.fixture
def small_chunks(monkeypatch) -> list[int]:
    """DeviceBatches in chunks of a few steps, so a run crosses many chunk boundaries (both staging slots, ragged
    ends); returns the list the steps of each chunk it builds are appended to."""
    monkeypatch.setattr(minibatches, "DEVICE_CHUNK_BYTES", 300_000)
    built: list[int] = []
    build = minibatches.DeviceBatches._build

    def counted(self, start, stop, slot):
        built.append(stop - start)
        return build(self, start, stop, slot)

    monkeypatch.setattr(minibatches.DeviceBatches, "_build", counted)
    return built


# ------------------------------------------------------------------------------------- the CUDA path on the CPU

@pytest.mark.parametrize("settings", SETTINGS, ids=SETTING_IDS)
def test_device_batches_on_the_cpu_give_the_cpu_trainers_weights_bit_for_bit(data, settings, small_chunks):
    models, seeds = subsets(data, RAGGED), [0, 1, 2, 3, 4]
    host = train_many(models, seeds, arch=arch_of(settings), settings=settings, workers=1)
    on_device = train_many(models, seeds, arch=arch_of(settings), settings=settings, device_batches=True)
    assert_same_weights(host, on_device)
    assert len(small_chunks) >= 4 and sum(small_chunks) == n_batches(RAGGED[0], settings.batch_size) * settings.epochs


def _builder_chunks(kind: str, sizes: tuple[int, ...], shape: minibatches.BatchShape, epochs: int
                    ) -> tuple[list[dict[str, torch.Tensor]], np.ndarray]:
    """Copies of every chunk a builder of ``kind`` (host | device) makes for models of ``sizes`` rows (longest first,
    seeds 0, 1, ...), and each model's number of steps."""
    offsets = np.cumsum((0,) + sizes)
    streams = [minibatches.ModelSteps(n, int(o), ModelRandomness(seed), batch_size=shape.batch_size, epochs=epochs,
                                  n_units=shape.n_units, dropout=shape.dropout)
               for seed, (n, o) in enumerate(zip(sizes, offsets))]
    rng = np.random.default_rng(0)
    x = np.hstack([rng.normal(size=(offsets[-1], 10)), np.ones((offsets[-1], 1))]).astype(np.float32)
    rows = minibatches.StackRows(x, rng.integers(0, 8, offsets[-1]).astype(np.int16),
                             rng.integers(0, 2, offsets[-1]).astype(np.int16))
    steps = np.array([s.total_steps for s in streams])
    builder = (minibatches.HostBatches(streams, steps, rows, shape) if kind == "host" else
               minibatches.DeviceBatches(streams, steps, rows, shape, device=torch.device("cpu"), threads=2))
    ranges = [(a, min(a + builder.chunk, int(steps[0]))) for a in range(0, int(steps[0]), builder.chunk)]
    return [{k: v.clone() for k, v in chunk.items()} for chunk in builder.chunks(ranges)], steps


def test_device_batches_build_the_host_batches_arrays_exactly(small_chunks):
    """The arrays themselves, at every step each model takes: 5 models x 30 epochs, a million dropout draws (one in
    65,536 equals the keep threshold)."""
    sizes, shape = (200, 150, 150, 90, 40), minibatches.BatchShape(32, 48, 8, 0.3, 0.2)
    host, steps = _builder_chunks("host", sizes, shape, epochs=30)
    device, _ = _builder_chunks("device", sizes, shape, epochs=30)
    assert len(device) > 10
    for name in ("x", "coef", "neg_target", "keep"):
        for k, total in enumerate(steps):   # a chunk holds the models active at its start; past a model's end: unused
            ours = torch.cat([c[name][k] for c in device if k < len(c[name])])[:total]
            theirs = torch.cat([c[name][k] for c in host if k < len(c[name])])[:total]
            assert torch.equal(ours, theirs), (name, k)


def test_device_batches_on_the_cpu_give_the_cpu_trainers_snapshots(data, small_chunks):
    settings, snapshots = replace(FEW_EPOCHS, epochs=5), {}
    models = subsets(data, RAGGED[:3])
    train_many(models, [0, 1, 2], arch=arch_of(settings), settings=settings, device_batches=True,
               snapshot_epochs=[2, 4], on_snapshot=lambda epoch, weights: snapshots.__setitem__(epoch, weights))
    assert sorted(snapshots) == [2, 4]
    for epoch, weights in snapshots.items():
        shorter = train_many(models, [0, 1, 2], arch=arch_of(settings), settings=replace(settings, epochs=epoch),
                             workers=1)
        assert_same_weights(weights, shorter)


def test_an_exception_at_a_snapshot_stops_device_batches_cleanly(data, small_chunks):
    class Stop(Exception):
        pass

    def stop(epoch, weights):
        raise Stop(epoch)

    with pytest.raises(Stop, match="1"):
        train_many(subsets(data, RAGGED), [0, 1, 2, 3, 4], arch=arch_of(FEW_EPOCHS), settings=FEW_EPOCHS,
                   device_batches=True, snapshot_epochs=[1, 2], on_snapshot=stop)
    assert len(small_chunks) < 9   # it stopped early
    assert not [t for t in threading.enumerate() if t.name.startswith("batches")]   # no filling thread left behind


# ------------------------------------------------------------------------------------------- choosing the device

@without_cuda
def test_auto_is_the_cpu_without_a_gpu():
    assert resolve_device("auto", where="train.device") == torch.device("cpu")


@without_cuda
def test_cuda_without_a_gpu_is_one_error_line_naming_the_setting():
    with pytest.raises(BenchmarkError, match=r"^train\.device: cuda, but torch .* sees no CUDA device"):
        resolve_device("cuda", where="train.device")


@without_cuda
def test_params_asking_for_cuda_without_a_gpu_fail_before_any_stage(tmp_path):
    from benchmark.experiment.params import load_settings

    path = tmp_path / "params.yaml"
    path.write_text("train:\n  device: cuda\n")
    with pytest.raises(BenchmarkError, match=rf"^{path}: train\.device: cuda, but .* use cpu, or auto"):
        load_settings(path)


def test_an_unknown_device_names_the_choices(tmp_path):
    from benchmark.experiment.params import load_settings

    path = tmp_path / "params.yaml"
    path.write_text("train:\n  device: gpu\n")
    with pytest.raises(BenchmarkError, match=r"train\.device: 'gpu' is not one of auto, cpu, cuda"):
        load_settings(path)


@without_cuda
def test_bench_on_cuda_without_a_gpu_exits_with_one_line(capsys):
    from benchmark.cli import main

    assert main(["bench", "--device", "cuda", "--models", "1", "--epochs", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --device: cuda, but torch")


# ------------------------------------------------------------------------------------------------------- bench

def test_bench_on_the_cpu_reports_models_per_second_and_no_device_figures():
    result = bench.run_bench(models=2, reference_models=0, epochs=1, rows=64, workers=1)
    assert result.device == "cpu" and result.models_per_second == pytest.approx(2 / result.vectorised_seconds)
    assert result.device_seconds is None and result.device_vs_cpu is None
    assert any("models/s" in line for line in bench.summary_lines(result))


def test_bench_side_by_side_path_runs_on_the_cpu_and_agrees_bit_for_bit():
    """The code a GPU bench takes, with the CPU as the device: the same weights, so no difference at all."""
    result = bench.run_bench(models=3, reference_models=0, epochs=1, rows=100, workers=1, device=torch.device("cpu"))
    assert result.device == "cpu" and result.device_seconds > 0
    assert result.device_vs_cpu == pytest.approx(result.device_models_per_second / result.models_per_second)
    assert result.device_max_probability_difference == 0.0 and result.device_argmax_agreement == 1.0
    assert any("x the cpu trainer" in line for line in bench.summary_lines(result))


def test_gpu_check_trainer_figures_run_on_the_cpu_as_the_device():
    from benchmark.tools.gpu_check import trainer_figures

    figures = trainer_figures(2, epochs=1, device=torch.device("cpu"))
    assert figures["models"] == 2 and figures["device_max_probability_difference"] == 0.0
    json.dumps(figures)


@without_cuda
def test_gpu_check_trainer_figures_say_when_there_is_no_gpu():
    from benchmark.tools.gpu_check import trainer_figures

    assert trainer_figures(2, epochs=1) == {"note": "no CUDA device: the trainer's GPU figures not measured"}


# ------------------------------------------------------------------------------------------------- on a GPU

def _assert_close(cpu: list[Weights], gpu: list[Weights], x: np.ndarray) -> None:
    """Every class probability within GPU_TOLERANCE; an argmax may differ only where the CPU's top two classes are
    closer than twice that (a tie within float32 rounding)."""
    for wc, wg in zip(cpu, gpu, strict=True):
        for pc, pg in zip(predict(wc, x, n_emotion=8), predict(wg, x, n_emotion=8)):
            assert np.abs(pc - pg).max() <= GPU_TOLERANCE
            top2 = np.sort(pc, axis=1)[:, -2:]
            differ = pc.argmax(1) != pg.argmax(1)
            assert (top2[differ, 1] - top2[differ, 0] < 2 * GPU_TOLERANCE).all()


@needs_cuda
@pytest.mark.parametrize("settings", SETTINGS, ids=SETTING_IDS)
def test_cuda_trainer_gives_the_cpu_predictions_within_tolerance(data, settings):
    models, seeds = subsets(data, RAGGED), [0, 1, 2, 3, 4]
    cpu = train_many(models, seeds, arch=arch_of(settings), settings=settings, workers=1)
    gpu = train_many(models, seeds, arch=arch_of(settings), settings=settings, device=torch.device("cuda"))
    _assert_close(cpu, gpu, data.x)


@needs_cuda
@pytest.mark.slow
def test_cuda_trainer_gives_the_cpu_predictions_within_tolerance_after_the_papers_500_epochs():
    faces = bench.synthetic_data()   # 2,052 rows: 65 batches x 500 epochs = 32,500 steps
    settings, seeds = CorrectorSettings(), [0, 1, 2]
    cpu = train_many([faces] * 3, seeds, arch=arch_of(settings), settings=settings)
    gpu = train_many([faces] * 3, seeds, arch=arch_of(settings), settings=settings, device=torch.device("cuda"))
    _assert_close(cpu, gpu, faces.x)


@needs_cuda
def test_cuda_trainer_gives_the_same_bits_twice(data, small_chunks):
    run = [train_many(subsets(data, RAGGED), [0, 1, 2, 3, 4], arch=arch_of(FEW_EPOCHS), settings=FEW_EPOCHS,
                      device=torch.device("cuda")) for _ in range(2)]
    assert_same_weights(*run)


@needs_cuda
def test_cuda_snapshots_equal_shorter_cuda_runs(data):
    settings, snapshots, cuda = replace(FEW_EPOCHS, epochs=5), {}, torch.device("cuda")
    models = subsets(data, RAGGED[:3])
    train_many(models, [0, 1, 2], arch=arch_of(settings), settings=settings, device=cuda, snapshot_epochs=[2, 4],
               on_snapshot=lambda epoch, weights: snapshots.__setitem__(epoch, weights))
    for epoch, weights in snapshots.items():
        assert_same_weights(weights, train_many(models, [0, 1, 2], arch=arch_of(settings),
                                                settings=replace(settings, epochs=epoch), device=cuda))


@needs_cuda
def test_bench_on_cuda_reports_models_per_second_and_the_ratio_to_the_cpu_trainer():
    result = bench.run_bench(models=4, reference_models=0, epochs=2, rows=256, device="cuda")
    assert result.device.startswith("cuda (") and result.device_models_per_second > 0
    assert result.device_vs_cpu == pytest.approx(result.device_models_per_second / result.models_per_second)
    assert result.device_max_probability_difference <= GPU_TOLERANCE
    json.dumps(result.as_dict())


@needs_cuda
def test_auto_is_cuda_when_there_is_a_gpu():
    assert resolve_device("auto", where="train.device").type == "cuda"


@needs_cuda
def test_the_corrector_method_trains_on_the_gpu_when_its_device_is_cuda():
    from toy import GENDER, make_toy_table

    from benchmark.methods.corrector import Corrector
    from benchmark.methods.method import FitTask

    table = make_toy_table(subjects_per_gender=3)
    tasks = [FitTask(table, {"test": table}, seed, GENDER) for seed in (0, 1)]
    on_gpu = Corrector(FEW_EPOCHS, device="cuda").run(tasks)
    on_cpu = Corrector(FEW_EPOCHS, device="cpu").run(tasks)
    for gpu, cpu in zip(on_gpu, on_cpu, strict=True):
        assert np.abs(gpu["test"].emotion - cpu["test"].emotion).max() <= GPU_TOLERANCE
        assert np.abs(gpu["test"].attribute - cpu["test"].attribute).max() <= GPU_TOLERANCE
