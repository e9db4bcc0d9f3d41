"""`processes.map_on_cores`: independent work spread over the cores, results in input order, as a plain loop gives;
`processes.run_jobs`: several kinds of such work in one pool, each combined as if run alone."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark.infra import processes


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def _blas_threads(_: int) -> int:
    import threadpoolctl

    return max((info["num_threads"] for info in threadpoolctl.threadpool_info()), default=1)


def test_results_come_back_in_input_order_equal_to_a_plain_loop():
    items = list(range(23))
    assert [square for _, square in processes.map_on_cores(_pid_and_square, items)] == [x * x for x in items]


def test_the_work_runs_in_one_worker_per_core_when_there_are_several(monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    pids = {pid for pid, _ in processes.map_on_cores(_pid_and_square, list(range(8)))}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_one_core_runs_the_work_in_this_process(monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0])
    assert {pid for pid, _ in processes.map_on_cores(_pid_and_square, [1, 2, 3])} == {os.getpid()}


def test_each_worker_uses_one_blas_thread(monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    np.ones((2, 2)) @ np.ones((2, 2))  # BLAS loaded before the fork
    assert set(processes.map_on_cores(_blas_threads, [0, 1])) == {1}


def _sigint_ignored(_: int) -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("item 3")
    return x


def test_workers_leave_ctrl_c_to_this_process(monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    assert processes.map_on_cores(_sigint_ignored, [0, 1]) == [True, True]


def _quick_or_slow(x: int) -> int:
    time.sleep(0 if x == 1 else 30)
    return x


def _fail_meanwhile() -> None:
    time.sleep(0.5)  # the workers are waiting on their queue or working
    raise ValueError("the parent's own error")


def test_workers_stopped_by_an_error_of_this_process_end_without_a_traceback(monkeypatch, capfd):
    # inside a stage SIGTERM raises Terminated (sigterm_as_interrupt); forked workers inherited that handler and each
    # printed a traceback when the parent stopped them, before the parent's one error line
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    with processes.sigterm_as_interrupt(), pytest.raises(ValueError, match="own error"):
        processes.map_on_cores(_quick_or_slow, [1, 2], meanwhile=_fail_meanwhile)  # one worker idle, one busy
    assert "Traceback" not in capfd.readouterr().err


def test_an_error_in_one_item_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    with pytest.raises(ValueError, match="item 3"):
        processes.map_on_cores(_fail_on_three, list(range(6)))


def _square(x: int) -> int:
    return x * x


def _sequentially(batch: processes.Job) -> object:
    return batch.combine([call() for call in batch.calls])


def test_batches_of_different_work_in_one_pool_give_what_each_gives_alone(monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    batches = [processes.Job([functools.partial(_square, x) for x in range(5)], sum),
               processes.Job([], list),
               processes.Job([functools.partial(str, x) for x in range(12)], "-".join),
               processes.Job([functools.partial(_pid_and_square, 7)], len)]
    expected = [30, [], "-".join(map(str, range(12))), 1]
    assert processes.run_jobs(batches) == [_sequentially(b) for b in batches] == expected


def test_the_pieces_of_all_batches_share_the_workers(monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    pids = processes.run_jobs([processes.Job([functools.partial(_pid_and_square, x) for x in range(4)], list),
                                  processes.Job([functools.partial(_pid_and_square, x) for x in range(4)], list)])
    assert os.getpid() not in {pid for batch in pids for pid, _ in batch}


def _waits_for(path: str) -> bool:
    """Whether ``path`` appears within 30 s."""
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("cores", [[0], [0, 1]])
def test_meanwhile_runs_in_this_process_before_the_results_are_awaited(tmp_path, monkeypatch, cores):
    """The workers wait for a file that only ``meanwhile`` (run here) writes: they finish only if it runs while
    they work (with one core: before the items)."""
    monkeypatch.setattr(processes, "available_cores", lambda: cores)
    flag = tmp_path / "meanwhile-ran"
    ran_in = []

    def meanwhile() -> None:
        ran_in.append(os.getpid())
        flag.touch()

    assert processes.map_on_cores(_waits_for, [str(flag)] * 3, meanwhile=meanwhile) == [True] * 3
    assert ran_in == [os.getpid()]


_FAILING_WITH_LARGE_PIECES = """
import numpy as np
from benchmark.infra.processes import map_on_cores

def work(item):
    raise ValueError("bad item")

if __name__ == "__main__":
    try:
        map_on_cores(work, [np.ones(125_000) for _ in range(6)])  # 1 MB pieces: more than the call pipe holds
    except ValueError as err:
        print("raised:", err)
"""


def test_an_error_in_a_worker_with_large_pieces_still_queued_ends_the_process(tmp_path):
    # the pool's feeder thread was left blocked writing a piece into the pipe of the terminated workers, and joining
    # it at exit hung the process after its error (every time, before the fix)
    script = tmp_path / "failing.py"
    script.write_text(_FAILING_WITH_LARGE_PIECES)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(processes.__file__).parents[2])})
    assert done.returncode == 0 and "raised: bad item" in done.stdout
