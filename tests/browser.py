"""Headless Chromium for the browser tests (Debian's `chromium`; the tests skip with a reason when it is absent).

Started with the flags this closed network needs (no background networking, no component updates, a fresh profile).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", "--hide-scrollbars")


def chromium() -> str:
    """Path of the chromium binary; skips the test (fails under BENCHMARK_REQUIRE_BROWSER=1) when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        reason = "headless Chromium not found (apt-get install -y chromium)"
        if os.environ.get("BENCHMARK_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def dump_dom(url: str, *, budget_ms: int = 20000, timeout: int = 120) -> str:
    """The DOM after the page's scripts ran for ``budget_ms`` of virtual time."""
    return _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout).stdout


def screenshot(url: str, target: Path, *, budget_ms: int = 20000, size: str = "1400,900", timeout: int = 120) -> Path:
    """Save a PNG screenshot of ``url`` to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--virtual-time-budget={budget_ms}", f"--window-size={size}", f"--screenshot={target}", url], timeout)
    return target


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server command in its own process group (mlflow ui spawns workers), stopped as a whole."""

    def __init__(self, args: list[str], *, health_url: str, cwd: Path, env: dict[str, str] | None = None,
                 wait_s: float = 60) -> None:
        self.process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(health_url, timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited with {self.process.returncode} before answering {health_url}") from None
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{health_url} did not answer within {wait_s} s")

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
