"""One warehouse, many clients: the app server owns the warehouse and runs CLI commands for it.

DuckDB lets one process open a database file for writing (and then no other process may open
it at all). So while ``valuescope serve`` runs, it *owns* the warehouse, and a ``valuescope``
command against the same file does not open it: it hands the command to the server over a local
TCP socket (127.0.0.1, a random port) and prints what the command prints, with the same exit
status. The server runs the command in a thread of its own process, on its own connection:
pages keep reading while a long load writes (DuckDB's MVCC), and the load's new data version
is what the pages see on their next run.

* Discovery: the server writes ``<warehouse>.server.json`` (port, pid, a random token; mode
  0600, so only users who may read the warehouse's folder can send commands) and removes it
  when it stops. A file left by a killed server is recognised (nothing listens, or the pid is
  gone) and removed.
* Queueing: commands that write run one at a time; a command that has to wait is told so
  (``waiting for … to finish``) and starts when the one before it ends. Read-only commands
  (``datasets``, ``export``) do not queue.
* Paths: the client sends the command's path arguments resolved against its own working
  directory, so ``valuescope ingest ./orders.csv`` means the client's file.
* Ctrl-C in the client detaches it: the command still finishes in the server (a load is one
  transaction either way), and ``valuescope datasets`` shows the result.

Protocol: one JSON object per line. The client sends ``{"token", "argv", "overrides",
"isatty"}``; the server answers with ``{"out": text}`` / ``{"err": text}`` lines and finally
``{"exit": status}``.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path
from typing import Callable

#: argparse destinations whose values are paths on the client's machine (resolved before sending)
PATH_DESTS = ("file", "out", "mapping", "json", "outcomes", "truth", "events", "model_dir", "customers_file",
              "segment_rules")


def server_file(db_path: str | Path) -> Path:
    """Where a server serving ``db_path`` announces itself."""
    return Path(str(Path(db_path).resolve()) + ".server.json")


# ---------------------------------------------------------------------------- output routing
class _Router(io.TextIOBase):
    """A ``sys.stdout`` / ``sys.stderr`` stand-in that writes to the calling thread's target (a
    command running for a client) or, in every other thread, to the original stream."""

    def __init__(self, original, which: str):
        self._original = original
        self._which = which

    def _target(self):
        return getattr(_LOCAL, "sink", None)

    def write(self, text: str) -> int:
        sink = self._target()
        if sink is None:
            return self._original.write(text)
        sink(self._which, text)
        return len(text)

    def flush(self) -> None:
        if self._target() is None:
            self._original.flush()

    def isatty(self) -> bool:
        sink = self._target()
        if sink is None:
            return self._original.isatty()
        return bool(getattr(_LOCAL, "isatty", False))

    @property
    def encoding(self):  # noqa: D401 - mirrors the stream
        return getattr(self._original, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._original.fileno()


_LOCAL = threading.local()
_ROUTED = threading.Lock()


def _install_router() -> None:
    with _ROUTED:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout, "out")
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr, "err")


# ---------------------------------------------------------------------------- the server
class JobServer:
    """Runs CLI commands for clients of one warehouse (see the module docstring)."""

    def __init__(self, wh, run: Callable[[list[str], dict], int] | None = None):
        self.wh = wh
        self.token = secrets.token_urlsafe(24)
        self._run = run or _run_cli
        self._queue = threading.Lock()          # commands that write run one at a time
        self._current: dict | None = None       # the running writer: {"command", "since"}
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self.file = server_file(wh.path)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "JobServer":
        _install_router()
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                owner._handle(self.rfile, self.wfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="valuescope-jobs", daemon=True)
        self._thread.start()
        info = {"pid": os.getpid(), "port": self.port, "token": self.token, "db": str(Path(self.wh.path).resolve()),
                "started": time.time()}
        tmp = self.file.with_name(self.file.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp, self.file)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(OSError):
            info = json.loads(self.file.read_text())
            if info.get("pid") == os.getpid() and info.get("token") == self.token:
                self.file.unlink()

    def _handle(self, rfile, wfile) -> None:
        send_lock = threading.Lock()

        def send(obj) -> None:
            data = (json.dumps(obj) + "\n").encode("utf-8")
            with send_lock:
                try:
                    wfile.write(data)
                    wfile.flush()
                except OSError:  # the client went away (Ctrl-C): the command keeps running
                    pass

        try:
            request = json.loads(rfile.readline().decode("utf-8") or "{}")
        except ValueError:
            send({"err": "valuescope: a malformed request\n"})
            send({"exit": 2})
            return
        if not secrets.compare_digest(str(request.get("token", "")), self.token):
            send({"err": "valuescope: not allowed (wrong token)\n"})
            send({"exit": 2})
            return
        argv = [str(a) for a in request.get("argv", [])]
        writes = not bool(request.get("readonly"))
        command = describe_command(argv)
        _install_router()  # again: something (a test runner, a framework) may have replaced sys.stdout since
        _LOCAL.sink = lambda which, text: send({which: text})
        _LOCAL.isatty = bool(request.get("isatty"))
        from analytics import access

        # whoever holds the token (mode 0600, beside the warehouse) is a local admin: the command line
        caller = access.cli_caller(str(request.get("user") or "") or None)
        try:
            with self._writer_turn(command, send) if writes else contextlib.nullcontext(), \
                    access.acting_as(caller):
                access.set_warehouse(self.wh)
                status = self._run(argv, dict(request.get("overrides") or {}))
        except BaseException as exc:  # never let a command take the server down
            send({"err": f"valuescope: the command failed in the app server: {exc}\n"})
            status = 1
        finally:
            if writes:
                self.wh.note_change()  # the pages read the version again, whatever the command wrote
            _LOCAL.sink = None
            _LOCAL.isatty = False
        send({"exit": int(status)})

    @contextlib.contextmanager
    def _writer_turn(self, command: str, send):
        if not self._queue.acquire(blocking=False):
            held = self._current or {}
            since = time.strftime("%H:%M:%S", time.localtime(held.get("since", time.time())))
            send({"err": f"valuescope: waiting for `{held.get('command', 'another command')}` (running since "
                         f"{since}) to finish in the app server…\n"})
            self._queue.acquire()
        self._current = {"command": command, "since": time.time()}
        try:
            yield
        finally:
            self._current = None
            self._queue.release()


def _run_cli(argv: list[str], overrides: dict) -> int:
    from analytics.cli import run_args

    return run_args(argv, overrides)


_SERVERS: dict[str, JobServer] = {}
_SERVERS_LOCK = threading.Lock()


def start(wh) -> JobServer:
    """Serve CLI commands for ``wh`` from this process (once per warehouse)."""
    key = str(Path(wh.path).resolve())
    with _SERVERS_LOCK:
        server = _SERVERS.get(key)
        if server is None:
            server = _SERVERS[key] = JobServer(wh).start()
            import atexit

            atexit.register(server.stop)
        return server


# ---------------------------------------------------------------------------- the client
def find_server(db_path: str | Path) -> dict | None:
    """The announcement of a live server for ``db_path`` (None: none; a stale file is removed)."""
    path = server_file(db_path)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    from analytics.warehouse import pid_alive

    if not pid_alive(int(info.get("pid", -1))):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    return info


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment
        return "unknown"


def describe_command(argv: list[str], most: int = 6) -> str:
    """``valuescope ARGS`` as another client is told it waits for: the first ``most`` arguments
    (the warehouse's ``--db`` left out: it is the same one), "…" when there are more."""
    shown, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--db":
            skip = True
        elif not a.startswith("--db="):
            shown.append(a)
    return " ".join(["valuescope"] + shown[:most] + (["…"] if len(shown) > most else []))


def silence_stdout(stream) -> None:
    """After a reader of ``stream`` closed the pipe (``| head``): point the process's stdout at
    /dev/null when ``stream`` is it, so the interpreter's final flush does not fail again."""
    if stream is not sys.stdout and stream is not sys.__stdout__:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def submit(info: dict, argv: list[str], overrides: dict, *, readonly: bool = False,
           out=None, err=None) -> int | None:
    """Send a command to the server described by ``info`` and relay its output; its exit status,
    or None when the server cannot be reached (the caller then runs the command itself)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        sock = socket.create_connection(("127.0.0.1", int(info["port"])), timeout=5)
    except (OSError, KeyError, ValueError):
        return None
    sock.settimeout(None)  # a long load may print nothing for minutes
    with sock, sock.makefile("rwb") as f:
        request = {"token": info.get("token"), "argv": argv, "overrides": overrides, "readonly": readonly,
                   "isatty": bool(getattr(err, "isatty", lambda: False)()), "user": _user()}
        try:
            f.write((json.dumps(request) + "\n").encode("utf-8"))
            f.flush()
        except OSError:
            return None
        started = False
        for line in f:
            started = True
            msg = json.loads(line.decode("utf-8"))
            if "out" in msg:
                if out is None:  # the reader went away: the command runs on, its output is dropped
                    continue
                try:
                    out.write(msg["out"])
                    out.flush()
                except BrokenPipeError:  # `valuescope datasets | head`: not a failure of the command
                    silence_stdout(out)
                    out = None
            elif "err" in msg:
                err.write(msg["err"])
                err.flush()
            elif "exit" in msg:
                return int(msg["exit"])
        if not started:  # it stopped (killed, crashed) before a word of the command: run it here instead
            print("valuescope: the app server stopped before it answered; running the command in this process",
                  file=err)
            return None
    print("valuescope: the app server stopped before the command finished; check with `valuescope datasets`",
          file=err)
    return 1
