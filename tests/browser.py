"""Opening a page in headless Chromium over the DevTools protocol, standard library only.

Chromium's `--remote-debugging-pipe` speaks the protocol as NUL-terminated JSON messages on
file descriptors 3 (commands in) and 4 (events and replies out). A page is loaded, every
console message, uncaught exception and log entry (failed loads included) is collected, and a
full-page screenshot taken.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageLoad:
    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    screenshot_png: bytes = b""
    text: str = ""


class _Pipe:
    def __init__(self, binary: str, profile: str):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:
            # Out of the way first, so neither end is overwritten before it is copied.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             f"--user-data-dir={profile}", "about:blank"],
            close_fds=False, preexec_fn=wire,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, limit_messages: int = 10_000) -> None:
        """Read events until `method` arrives (counted in messages, not in seconds)."""
        if any(e.get("method") == method for e in self.events):
            return
        for _ in range(limit_messages):
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return
        raise RuntimeError(f"no {method} event")

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except RuntimeError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def load(page: Path, *, width: int = 1400, height: int | None = None, top: int = 0
         ) -> PageLoad:
    """Open `page` (a file) and report what the browser said about it; the screenshot is of
    the whole page, or of `height` pixels from `top`."""
    binary = chromium()
    assert binary is not None, "chromium is not installed"
    with tempfile.TemporaryDirectory() as profile:
        pipe = _Pipe(binary, profile)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget",
                                {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                      session=session)
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired")
            text = pipe.send("Runtime.evaluate", {"expression": "document.body.innerText",
                                                  "returnByValue": True},
                             session=session)["result"].get("value", "")
            shot_params: dict = {"format": "png", "captureBeyondViewport": True}
            if height is not None:
                shot_params["clip"] = {"x": 0, "y": top, "width": width, "height": height,
                                       "scale": 1}
            shot = pipe.send("Page.captureScreenshot", shot_params, session=session)["data"]
            result = PageLoad(screenshot_png=base64.b64decode(shot), text=text)
            for event in pipe.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Runtime.consoleAPICalled":
                    words = " ".join(str(a.get("value", a.get("description", "")))
                                     for a in params.get("args", []))
                    (result.errors if params.get("type") in ("error", "assert")
                     else result.messages).append(f"console.{params.get('type')}: {words}")
                elif method == "Runtime.exceptionThrown":
                    details = params.get("exceptionDetails", {})
                    result.errors.append("exception: " + str(
                        details.get("exception", {}).get("description", details.get("text"))))
                elif method == "Log.entryAdded":
                    entry = params.get("entry", {})
                    (result.errors if entry.get("level") == "error"
                     else result.messages).append(f"log: {entry.get('text')} "
                                                  f"{entry.get('url', '')}")
            return result
        finally:
            pipe.close()
