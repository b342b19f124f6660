"""A protocol-level Streamlit client for the page benchmarks: one websocket session per visit.

A browser opening a page connects to ``/_stcore/stream`` and sends one ``rerun_script`` BackMsg
(the page's URL path, no widget states); the server then streams ForwardMsgs (new_session,
deltas, ...) and ends the run with ``script_finished``. :func:`visit` does exactly that and
returns the wall time from sending the request to the ``script_finished`` of the page's own run
(a fresh session each call, so nothing is cached in the session state), plus what the run
showed: exceptions and the texts of its alerts (errors/warnings/infos), so a page that only said
"not prepared yet" or failed is not mistaken for a fast one.

Also: :func:`start_server` (``valuescope serve`` on 127.0.0.1 and a free port, as the browser
tests start it) and :func:`wait_healthy`.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the app's pages by URL path ("" is the default page, Overview)
PAGES = {"Overview": "", "Data": "data", "Value": "value", "Predict": "predict",
         "Reviews": "reviews", "Segments": "segments", "Explorer": "explorer",
         "Campaigns": "campaigns", "Reports": "reports"}


@dataclass
class Visit:
    page: str
    seconds: float
    status: str                       # FINISHED_SUCCESSFULLY, ... or "timeout"
    exceptions: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # error / warning / info texts, in order
    n_deltas: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED_SUCCESSFULLY" and not self.exceptions


def _back_rerun(url_path: str, query: str = "") -> bytes:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    cs = msg.rerun_script
    cs.query_string = query
    cs.page_script_hash = ""
    cs.page_name = url_path
    cs.widget_states.SetInParent()
    return msg.SerializeToString()


async def visit_async(base_url: str, page: str, *, timeout: float = 300.0) -> Visit:
    """Open ``page`` (a key of :data:`PAGES`) in a new session; time until its script run ends."""
    import websockets
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    url = base_url.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
    url_path = PAGES.get(page, page)
    out = Visit(page=page, seconds=float("nan"), status="timeout")
    async with websockets.connect(url, subprotocols=["streamlit"], max_size=None,
                                  open_timeout=timeout, ping_interval=None) as ws:
        t0 = time.perf_counter()
        await ws.send(_back_rerun(url_path))
        deadline = t0 + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                out.seconds = time.perf_counter() - t0
                return out
            try:
                data = await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                continue
            if isinstance(data, str):
                continue
            fm = ForwardMsg()
            fm.ParseFromString(data)
            kind = fm.WhichOneof("type")
            if kind == "delta":
                out.n_deltas += 1
                d = fm.delta
                if d.WhichOneof("type") == "new_element":
                    el = d.new_element
                    which = el.WhichOneof("type")
                    if which == "exception":
                        out.exceptions.append(f"{el.exception.type}: {el.exception.message}")
                    elif which == "alert":
                        out.alerts.append(el.alert.body[:200])
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fm.script_finished)
                if status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY":
                    continue  # a fragment's own rerun, not the page's run
                out.seconds = time.perf_counter() - t0
                out.status = status
                if status == "FINISHED_EARLY_FOR_RERUN":
                    # the page asked for a rerun (st.rerun): its visible run is the next one
                    out.status = "timeout"
                    continue
                return out


def visit(base_url: str, page: str, *, timeout: float = 300.0) -> Visit:
    return asyncio.run(visit_async(base_url, page, timeout=timeout))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> float:
    """Seconds until ``url``'s health endpoint answers 200 (RuntimeError if the app exits or stalls)."""
    t0 = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"the app did not become healthy in {timeout:.0f} s")
        time.sleep(0.2)


@contextlib.contextmanager
def start_server(db: Path, *, prepare: str = "background", log: Path | None = None):
    """``valuescope serve`` on 127.0.0.1 (free port) over warehouse ``db``; yields (url, proc, seconds to healthy)."""
    port = free_port()
    env = dict(os.environ, VALUESCOPE_DB=str(db), PYTHONUNBUFFERED="1", VALUESCOPE_PREPARE=prepare,
               VALUESCOPE_SKIP_SAMPLE="1")
    log = log or Path(db).with_suffix(".server.log")
    cmd = [sys.executable, "-m", "analytics.cli", "serve", "--server.port", str(port),
           "--server.headless", "true", "--server.address", "127.0.0.1",
           "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        healthy = wait_healthy(url, proc, log)
        yield url, proc, healthy
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def load() -> str:
    """The machine's load averages (1, 5, 15 min), for the figures."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
