"""The correction network: the vectorised trainer against the reference loop (the oracle), independence of the
models in a stack, the randomness contract, and the method's outputs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from toy import GENDER, make_toy_table

from benchmark.core.labels import EMONET_EMOTIONS
from benchmark.core.outputs import OutputsTable
from benchmark.core.settings import CorrectorSettings
from benchmark.methods.corrector import Corrector
from benchmark.methods.method import FitTask
from benchmark.methods.network import (
    Architecture,
    ModelRandomness,
    TrainingData,
    dropout_keep,
    initial_weights,
    predict,
)
from benchmark.methods.reference import train_reference
from benchmark.methods.trainer import train_many

FEW_EPOCHS = CorrectorSettings(epochs=4)


def paper_arch(depth: int = 2, width: int = 24) -> Architecture:
    """EmoNet's 8 emotions and the two gender probabilities in; 8 emotions and 2 genders out."""
    return Architecture(8, depth, width, n_attribute_inputs=2, n_groups=2)


@pytest.fixture(scope="module")
def toy_data() -> TrainingData:
    # 144 rows: four full batches of 32 and a short last batch of 16
    return TrainingData.from_table(make_toy_table(subjects_per_gender=6), GENDER, input="logits")


def _subset(data: TrainingData, n: int) -> TrainingData:
    return TrainingData(data.x[:n], data.attribute[:n], data.emotion[:n])


def _probs(weights, data: TrainingData) -> np.ndarray:
    gender, emotion = predict(weights, data.x, n_emotion=8)
    return np.hstack([gender, emotion])


def _assert_equivalent(reference, vectorised, data: TrainingData) -> None:
    ref, vec = _probs(reference, data), _probs(vectorised, data)
    assert np.abs(ref - vec).max() < 1e-4
    assert (ref[:, :2].argmax(1) == vec[:, :2].argmax(1)).all()
    assert (ref[:, 2:].argmax(1) == vec[:, 2:].argmax(1)).all()


@pytest.mark.parametrize("settings", [
    FEW_EPOCHS,
    replace(FEW_EPOCHS, dropout=0.0),
    replace(FEW_EPOCHS, depth=1, width=7, attribute_weight=0.8, lr=3e-3, batch_size=20),
    replace(FEW_EPOCHS, depth=3, width=16, batch_size=144),
], ids=["paper", "no_dropout", "one_layer", "three_layers_full_batch"])
def test_vectorised_trainer_matches_reference_loop_with_one_model(toy_data, settings):
    arch = paper_arch(settings.depth, settings.width)
    reference = train_reference(toy_data, 7, arch=arch, settings=settings)
    vectorised = train_many([toy_data], [7], arch=arch, settings=settings, workers=1)[0]
    _assert_equivalent(reference, vectorised, toy_data)


def test_vectorised_trainer_matches_reference_loop_for_a_short_training_set(toy_data):
    small = _subset(toy_data, 45)     # one full batch and one of 13 rows
    arch = paper_arch()
    reference = train_reference(small, 3, arch=arch, settings=FEW_EPOCHS)
    vectorised = train_many([toy_data, small, _subset(toy_data, 100)], [1, 3, 5], arch=arch, settings=FEW_EPOCHS,
                            workers=1)[1]
    _assert_equivalent(reference, vectorised, toy_data)


def test_model_result_does_not_depend_on_the_other_models_in_its_stack(toy_data):
    arch = paper_arch()
    sizes = [144, 100, 33, 100, 70]   # ragged: 5, 4, 2, 4 and 3 batches per epoch
    stacked = train_many([_subset(toy_data, n) for n in sizes], [0, 1, 2, 3, 4], arch=arch, settings=FEW_EPOCHS,
                         workers=1)
    alone = train_many([_subset(toy_data, 100)], [3], arch=arch, settings=FEW_EPOCHS, workers=1)[0]
    for (w_stack, b_stack), (w_alone, b_alone) in zip(stacked[3].layers, alone.layers):
        np.testing.assert_array_equal(w_stack, w_alone)
        np.testing.assert_array_equal(b_stack, b_alone)


def _assert_same_weights(a, b) -> None:
    for (wa, ba), (wb, bb) in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


def test_snapshot_after_epoch_e_equals_a_run_of_e_epochs_for_every_model_of_a_ragged_stack(toy_data):
    arch = paper_arch()
    data = [_subset(toy_data, n) for n in (144, 100, 33)]   # 5, 4 and 2 batches per epoch
    snapshots: dict[int, list] = {}
    train_many(data, [0, 1, 2], arch=arch, settings=replace(FEW_EPOCHS, epochs=5), workers=1,
               snapshot_epochs=[2, 4], on_snapshot=lambda epoch, weights: snapshots.__setitem__(epoch, weights))
    assert sorted(snapshots) == [2, 4]
    for epoch, weights in snapshots.items():
        shorter = train_many(data, [0, 1, 2], arch=arch, settings=replace(FEW_EPOCHS, epochs=epoch), workers=1)
        for snapshot, trained in zip(weights, shorter, strict=True):
            _assert_same_weights(snapshot, trained)


def test_snapshots_at_or_beyond_the_last_epoch_are_not_taken(toy_data):
    taken: list[int] = []
    train_many([toy_data], [0], arch=paper_arch(), settings=FEW_EPOCHS, workers=1,
               snapshot_epochs=[4, 9], on_snapshot=lambda epoch, weights: taken.append(epoch))
    assert taken == []


def test_an_exception_raised_at_a_snapshot_stops_training(toy_data):
    class Stop(Exception):
        pass

    def stop(epoch, weights):
        raise Stop(epoch)

    corrector = Corrector(FEW_EPOCHS)
    table = make_toy_table(subjects_per_gender=3)
    with pytest.raises(Stop, match="1"):
        corrector.run([FitTask(table, {"test": table}, 0, GENDER)], snapshot_epochs=[1, 2], on_snapshot=stop)
    assert corrector.fitted == []


def test_worker_processes_do_not_change_results(toy_data):
    arch = paper_arch()
    data = [_subset(toy_data, n) for n in (144, 100, 60)]
    one = train_many(data, [0, 1, 2], arch=arch, settings=FEW_EPOCHS, workers=1)
    two = train_many(data, [0, 1, 2], arch=arch, settings=FEW_EPOCHS, workers=2)
    for a, b in zip(one, two):
        for (wa, ba), (wb, bb) in zip(a.layers, b.layers):
            np.testing.assert_array_equal(wa, wb)
            np.testing.assert_array_equal(ba, bb)


def test_same_seed_gives_identical_weights_and_another_seed_different_ones(toy_data):
    arch = paper_arch()
    a, b, c = train_many([toy_data] * 3, [5, 5, 6], arch=arch, settings=FEW_EPOCHS, workers=1)
    np.testing.assert_array_equal(a.layers[0][0], b.layers[0][0])
    assert not np.array_equal(a.layers[0][0], c.layers[0][0])


def test_initial_weights_follow_torch_linear_bounds():
    arch = paper_arch()
    weights = initial_weights(arch, ModelRandomness(0).init)
    assert [w.shape for w, _ in weights.layers] == [(24, 10), (24, 24), (10, 24)]
    for (w, b), (_, fan_in) in zip(weights.layers, arch.layer_shapes()):
        assert np.abs(w).max() <= 1 / np.sqrt(fan_in) and np.abs(b).max() <= 1 / np.sqrt(fan_in)
        assert w.dtype == np.float32


def test_dropout_keeps_units_at_rate_one_minus_p():
    keep = dropout_keep(np.random.default_rng(0), n_batches=200, batch_size=32, n_units=48, p=0.2)
    assert keep.shape == (200, 48, 32)
    # 307,200 Bernoulli(0.8) draws: the mean is within 0.004 of 0.8 with overwhelming probability
    assert abs(keep.mean() - 0.8) < 0.004


def test_corrector_emotion_head_covers_the_emotion_models_classes():
    classes = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # a 7-class model
    frame = make_toy_table(subjects_per_gender=2, images_per_cell=1).frame.drop(columns=["emo_contempt"])
    seven = OutputsTable(frame, make_toy_table().design, classes, {})
    result = Corrector(FEW_EPOCHS).run([FitTask(seven, {"test": seven}, 0, GENDER)])[0]["test"]
    assert result.emotion.shape == (len(frame), 7) and result.attribute.shape == (len(frame), 2)
    np.testing.assert_allclose(result.emotion.sum(axis=1), 1.0, atol=1e-6)


def test_corrector_input_probs_changes_what_the_network_sees():
    table = make_toy_table(subjects_per_gender=2, images_per_cell=1)
    logits = TrainingData.from_table(table, GENDER, input="logits").x
    probs = TrainingData.from_table(table, GENDER, input="probs").x
    np.testing.assert_allclose(probs[:, :8].sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(logits[:, 8:], probs[:, 8:])
    assert not np.allclose(logits[:, :8], probs[:, :8])
    assert logits.shape == (len(table.frame), len(EMONET_EMOTIONS) + 2)


@pytest.mark.slow
@pytest.mark.needs_shared
def test_paper_configuration_on_published_outputs_lands_near_the_papers_corrected_adfes_rows(published_tables):
    from benchmark.core import metrics
    from benchmark.core.design import layout

    faces, adfes = published_tables["faces"], published_tables["adfes"]
    results = Corrector(CorrectorSettings()).run([FitTask(faces, {"test": adfes}, seed, GENDER) for seed in range(3)])
    canonical = np.array(EMONET_EMOTIONS, dtype=object)
    cells = layout(adfes.design, GENDER)
    truth = adfes.frame[["gender", "emotion"]].to_numpy().T
    emotion_macro, gender_gap = [], []
    for result in results:
        probs = result["test"]
        emotion = metrics.summarize(metrics.cell_accuracies(
            group=truth[0], emotion=truth[1], correct=canonical[probs.emotion.argmax(1)] == truth[1], layout=cells), cells)
        gender = metrics.summarize(metrics.cell_accuracies(
            group=truth[0], emotion=truth[1], correct=np.array(GENDER.groups)[probs.attribute.argmax(1)] == truth[0],
            layout=cells), cells)
        emotion_macro.append(emotion.macro)
        gender_gap.append(gender.average_gap)
    # paper, corrected ADFES: emotion macro 92.92, gender average gap 10.28 (uncorrected: 80.69 and 16.67)
    assert np.mean(emotion_macro) > 88.0
    assert np.mean(gender_gap) < 16.67
