"""SIGTERM as an interrupt (benchmark/infra/processes.py): it raises in the main thread like Ctrl-C, is delivered again
when Python loses it in a finaliser, and is recognised behind the errors libraries raise while unwinding."""

from __future__ import annotations

import os
import signal
import time

import pytest

from benchmark.infra.processes import Terminated, interruption, sigterm_as_interrupt


def _spin(seconds: float = 5.0) -> None:
    """Bytecode to run for up to ``seconds``, so a pending or re-sent signal's handler gets its turn."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def test_sigterm_raises_terminated_inside_the_block_and_the_old_handler_is_back_after():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated, match="SIGTERM"):
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            _spin()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_sigterm_lost_in_a_finaliser_is_delivered_again():
    class Finalised:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            _spin(0.5)  # the handler runs here, where Python ignores its exception

    with pytest.raises(Terminated):
        with sigterm_as_interrupt():
            Finalised()
            _spin()


def test_an_interrupt_is_found_behind_an_error_raised_while_handling_it():
    try:
        try:
            raise Terminated("SIGTERM")
        except KeyboardInterrupt:
            raise UnboundLocalError("a library's clean-up failed")  # noqa: B904 (the implicit chain is the point)
    except UnboundLocalError as err:
        assert isinstance(interruption(err), Terminated)
    assert interruption(ValueError("plain")) is None
