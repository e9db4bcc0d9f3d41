"""The fork server of the CPU trainer's workers: it preloads the trainer, the train stage starts it first thing, and
a platform without one (Windows) trains in one process instead."""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver

import numpy as np
from toy import GENDER, make_toy_table

from benchmark.core.settings import CorrectorSettings
from benchmark.methods import fork_server, trainer
from benchmark.methods.network import Architecture, TrainingData


def test_the_fork_server_preloads_the_module_the_workers_run():
    assert fork_server.TRAINER_MODULE == trainer.__name__


def test_starting_it_where_the_platform_has_none_starts_nothing(monkeypatch):
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", lambda: (_ for _ in ()).throw(AssertionError))
    assert fork_server.start() is False


def test_starting_it_twice_keeps_the_running_server():
    assert fork_server.start() is True
    first = multiprocessing.forkserver._forkserver._forkserver_pid
    assert fork_server.start() is True
    assert multiprocessing.forkserver._forkserver._forkserver_pid == first


def test_without_a_fork_server_the_trainer_gives_the_workers_results_in_one_process(monkeypatch):
    data = [TrainingData.from_table(make_toy_table(subjects_per_gender=s), GENDER, input="logits") for s in (3, 4)]
    arch, settings = Architecture(8, 2, 24, n_attribute_inputs=2, n_groups=2), CorrectorSettings(epochs=2)
    with_workers = trainer.train_many(data, [0, 1], arch=arch, settings=settings, workers=2)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    monkeypatch.setattr(trainer, "_train_groups", lambda *a: (_ for _ in ()).throw(AssertionError("a worker ran")))
    alone = trainer.train_many(data, [0, 1], arch=arch, settings=settings, workers=2)
    for a, b in zip(alone, with_workers):
        for (wa, ba), (wb, bb) in zip(a.layers, b.layers):
            np.testing.assert_array_equal(wa, wb)
            np.testing.assert_array_equal(ba, bb)
