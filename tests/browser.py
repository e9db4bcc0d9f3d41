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


class Page:
    """A page in headless Chromium driven over the DevTools protocol (for pages that need a click, which --dump-dom
    cannot give): ``evaluate`` runs JavaScript, ``wait_for`` polls an expression, ``screenshot`` saves a PNG."""

    def __init__(self, url: str, *, size: tuple[int, int] = (1400, 900), timeout_s: float = 60) -> None:
        import asyncio
        import json

        self._loop = asyncio.new_event_loop()
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        port = free_port()
        self._browser = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={self._profile}", f"--remote-debugging-port={port}",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as answer:
                    targets = [t for t in json.loads(answer.read()) if t.get("type") == "page"]
                if targets:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("headless Chromium's DevTools endpoint did not answer")
            time.sleep(0.3)
        self._ids = 0
        self._socket = self._loop.run_until_complete(self._connect(targets[0]["webSocketDebuggerUrl"]))
        self._call("Page.navigate", url=url)

    async def _connect(self, ws_url: str):
        import aiohttp

        self._session = aiohttp.ClientSession()
        return await self._session.ws_connect(ws_url, max_msg_size=0)

    def _call(self, method: str, **params) -> dict:
        async def call() -> dict:
            self._ids += 1
            await self._socket.send_json({"id": self._ids, "method": method, "params": params})
            while True:
                message = await self._socket.receive_json()
                if message.get("id") == self._ids:
                    if "error" in message:
                        raise RuntimeError(f"{method}: {message['error']}")
                    return message["result"]

        return self._loop.run_until_complete(call())

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 60) -> None:
        """Poll until the expression is truthy."""
        deadline = time.monotonic() + timeout_s
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {timeout_s} s: {expression}")
            time.sleep(0.5)

    def html(self) -> str:
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, target: Path) -> Path:
        import base64

        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(self._call("Page.captureScreenshot", format="png")["data"]))
        return target

    def close(self) -> None:
        if getattr(self, "_session", None) is not None:
            self._loop.run_until_complete(self._session.close())
        for sig in (signal.SIGTERM, signal.SIGKILL):   # Chromium's whole process group (its helpers write the profile)
            try:
                os.killpg(self._browser.pid, sig)
                self._browser.wait(timeout=10)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self._loop.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
