"""Running the web app and a real Chromium for the end-to-end tests and the web benchmark.

The app runs as `q2mri app` in a child process on a free port, as a user starts it; Chromium is
Debian's (/usr/bin/chromium), driven through Playwright's core (no browser download).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-dev-shm-usage"]
VIEW = "img.image-display-area"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """`q2mri app [FILES]` in a child process; .url once it serves, .stop() to end it."""

    def __init__(self, files=(), log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(log, "w") if log else subprocess.DEVNULL
        exe = Path(sys.executable).with_name("q2mri")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([str(exe), "app", *map(str, files), "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_serving(self, timeout: float = 60.0) -> float:
        t_end = time.time() + timeout
        while time.time() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"q2mri app exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return time.perf_counter() - self.started
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("q2mri app did not start serving")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        if hasattr(self.log, "close"):
            self.log.close()


async def wait_for_views(page, timeout_ms: int = 60000) -> None:
    """Until every view shows a streamed frame (an <img> with a blob: source)."""
    await page.wait_for_function(
        f"document.querySelectorAll('{VIEW}').length >= 3 && "
        f"Array.from(document.querySelectorAll('{VIEW}')).every(i => i.src.startsWith('blob:') && i.naturalWidth > 0)",
        timeout=timeout_ms)


async def set_state(page, key: str, value) -> None:
    import json
    await page.evaluate(f"window.trame.state.set({json.dumps(key)}, {json.dumps(value)})")


async def get_state(page, key: str):
    import json
    return json.loads(await page.evaluate(f"JSON.stringify(window.trame.state.get({json.dumps(key)}))"))


async def view_pixels(page, index: int):
    """The current frame of view `index` as an (H, W, 3) uint8 array (decoded in the browser)."""
    import numpy as np
    data = await page.evaluate(f"""() => {{
        const img = document.querySelectorAll('{VIEW}')[{index}];
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        return [c.width, c.height, Array.from(ctx.getImageData(0, 0, c.width, c.height).data)];
    }}""")
    w, h, flat = data
    return np.array(flat, dtype=np.uint8).reshape(h, w, 4)[..., :3]


async def next_frame(page, index: int, timeout_ms: int = 20000) -> None:
    """Until view `index` shows a new frame."""
    src = await page.evaluate(f"document.querySelectorAll('{VIEW}')[{index}].src")
    await page.wait_for_function(
        f"document.querySelectorAll('{VIEW}')[{index}].src !== {src!r} && "
        f"document.querySelectorAll('{VIEW}')[{index}].complete", timeout=timeout_ms)
