"""One warehouse, many clients: CLI commands handed to the process that owns the warehouse
(with queueing and the same output and exit status), a second process waiting for the file
instead of failing, and writers in one process taking turns."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest

from analytics import jobserver
from analytics.cli import main
from analytics.warehouse import Warehouse, WarehouseLocked, get_warehouse

ROOT = Path(__file__).resolve().parent.parent


def _orders(path: Path, n: int = 30, prefix: str = "c") -> Path:
    rows = [f"{prefix}{i % 7},2024-0{1 + i % 6}-{10 + i % 15},{10 + i}" for i in range(n)]
    path.write_text("customer_id,order_date,amount\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A warehouse owned by this process with a job server for it (as `valuescope serve` runs)."""
    import analytics.warehouse as wmod

    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("VALUESCOPE_DB", str(db))
    wh = get_warehouse(db)
    server = jobserver.JobServer(wh).start()
    yield wh, db, server
    server.stop()
    with wmod._WAREHOUSES_LOCK:
        wmod._WAREHOUSES.pop(str(db.resolve()), None)
    wh.close()


def _client(db: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`valuescope ARGS --db DB` in another process (it finds the server and hands the command over)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "analytics.cli", *args, "--db", str(db), "--no-prepare"]
                          if args[0] == "ingest" else
                          [sys.executable, "-m", "analytics.cli", *args, "--db", str(db)],
                          cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_cli_commands_run_in_the_process_that_owns_the_warehouse(served, tmp_path):
    wh, db, server = served
    info = json.loads(server.file.read_text())
    assert info["pid"] == os.getpid() and info["port"] == server.port and oct(server.file.stat().st_mode)[-3:] == "600"
    work = tmp_path / "work"
    work.mkdir()
    _orders(work / "orders.csv")
    # a relative path means the client's file; output and exit status come back
    done = _client(db, "ingest", "orders.csv", "--dataset", "shop", cwd=work)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_loaded"] == 30
    assert wh.has_dataset("shop")  # written by this process, on its connection
    from analytics import access

    with access.acting_as(access.SYSTEM):  # recorded as the command line (a local admin), not as the app's user
        load_row = access.audit_trail(wh, action="load").iloc[0]
    assert load_row["actor_kind"] == "cli" and load_row["actor"].startswith("cli:") and load_row["n_rows"] == 30
    # the same through the client function (no new interpreter per command: each costs seconds)
    def run(*args, cwd=None):
        from analytics.cli import _parse, _resolved_paths

        argv = [*args, "--db", str(db)]
        old = os.getcwd()
        os.chdir(cwd or old)
        try:
            parsed = _parse(argv)
            out, err = io.StringIO(), io.StringIO()
            status = jobserver.submit(info, argv, _resolved_paths(parsed), readonly=bool(getattr(parsed, "readonly", 0)),
                                      out=out, err=err)
        finally:
            os.chdir(old)
        return status, out.getvalue(), err.getvalue()

    status, out, _ = run("datasets", "--json")
    assert status == 0 and [d["name"] for d in json.loads(out)] == ["shop"] and json.loads(out)[0]["events"] == 30
    status, _, err = run("delete-dataset", "nope", "--yes")
    assert status == 2 and "no dataset named 'nope'" in err and "Traceback" not in err
    status, _, _ = run("export", "--dataset", "shop", "--out", "back.csv", cwd=work)
    assert status == 0 and len(pd.read_csv(work / "back.csv")) == 30


def test_a_second_writer_is_queued_with_a_message(served, tmp_path):
    wh, db, server = served
    entered, release = threading.Event(), threading.Event()
    calls = []

    def held_run(argv, overrides):  # the first command holds the writer turn until released
        calls.append(argv[0])
        if len(calls) == 1:
            entered.set()
            assert release.wait(60)
        return 0

    server._run = held_run
    info = json.loads(server.file.read_text())
    results = {}

    def first():
        results["first"] = jobserver.submit(info, ["ingest", "a.csv", "--dataset", "x"], {}, out=io.StringIO(),
                                            err=io.StringIO())

    t = threading.Thread(target=first)
    t.start()
    assert entered.wait(60)
    class Tell(io.StringIO):  # releases the first command once the second was told to wait
        def write(self, text):
            n = super().write(text)
            if "waiting for `valuescope ingest a.csv --dataset x`" in text:  # the whole command, not cut
                release.set()
            return n

    err = Tell()
    status = jobserver.submit(info, ["ingest", "b.csv", "--dataset", "y"], {}, out=io.StringIO(), err=err)
    t.join(60)
    assert status == 0 and results["first"] == 0 and calls == ["ingest", "ingest"]
    assert "to finish in the app server" in err.getvalue()
    assert jobserver.describe_command(["score", "--db", "/d/w.duckdb", "--dataset", "s", "--as-of", "2024-01-01",
                                       "--out", "s.csv", "--bom"]) == \
        "valuescope score --dataset s --as-of 2024-01-01 --out …"


def test_a_read_only_command_does_not_queue_behind_a_writer(served):
    _, _, server = served
    entered, release = threading.Event(), threading.Event()

    def held_run(argv, overrides):
        if argv[0] == "ingest":  # the writer holds its turn until released
            entered.set()
            assert release.wait(60)
        return 0

    server._run = held_run
    info = json.loads(server.file.read_text())
    t = threading.Thread(target=lambda: jobserver.submit(info, ["ingest", "a.csv", "--dataset", "x"], {},
                                                         out=io.StringIO(), err=io.StringIO()))
    t.start()
    try:
        assert entered.wait(60)
        err = io.StringIO()
        assert jobserver.submit(info, ["datasets"], {}, readonly=True, out=io.StringIO(), err=err) == 0
        assert "waiting" not in err.getvalue()  # answered while the writer still runs
    finally:
        release.set()
        t.join(60)


def test_a_stale_announcement_is_ignored_and_removed(tmp_path):
    db = tmp_path / "w.duckdb"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    jobserver.server_file(db).write_text(json.dumps({"pid": int(dead.stdout), "port": 1, "token": "x"}))
    assert jobserver.find_server(db) is None and not jobserver.server_file(db).exists()
    src = _orders(tmp_path / "o.csv")
    assert main(["ingest", str(src), "--dataset", "s", "--db", str(db), "--no-prepare"]) == 0  # ran locally


def test_a_wrong_token_is_refused(served):
    _, _, server = served
    info = dict(json.loads(server.file.read_text()), token="guess")
    err = io.StringIO()
    assert jobserver.submit(info, ["datasets"], {}, out=io.StringIO(), err=err) == 2
    assert "not allowed" in err.getvalue()


_HOLDER = textwrap.dedent("""
    import sys
    from analytics.warehouse import Warehouse
    wh = Warehouse(sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()  # hold the file until told
    wh.close()
""")


def test_a_second_process_waits_for_the_file_instead_of_failing(tmp_path):
    db = tmp_path / "w.duckdb"
    Warehouse(db).close()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(WarehouseLocked, match="another process") as info:
            Warehouse(db)
        assert info.value.pid == holder.pid
        told = []

        def on_wait(exc):  # told once; then the holder lets go
            told.append(str(exc))
            holder.stdin.write("\n")
            holder.stdin.flush()

        wh = get_warehouse(db, wait=True, on_wait=on_wait)
        assert len(told) == 1 and f"process {holder.pid}" in told[0]
        assert wh.datasets() == []
        import analytics.warehouse as wmod

        with wmod._WAREHOUSES_LOCK:
            wmod._WAREHOUSES.pop(str(db.resolve()), None)
        wh.close()
    finally:
        holder.kill()
        holder.wait()


def test_no_wait_exits_with_the_lock_message(tmp_path, capsys):
    db = tmp_path / "w.duckdb"
    Warehouse(db).close()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline().strip() == "open"
        assert main(["datasets", "--db", str(db), "--no-wait"]) == 2
        err = capsys.readouterr().err
        assert "another process" in err and "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


def test_writers_in_one_process_take_turns_and_the_second_is_told(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    inside, release = threading.Event(), threading.Event()
    order = []

    def first():
        with wh.writer("the load into 'a'"):
            order.append("first in")
            inside.set()
            assert release.wait(60)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    assert inside.wait(60)
    told = []

    def on_wait(what):
        told.append(what)
        release.set()

    with wh.writer("the load into 'b'", on_wait):
        order.append("second in")
    t.join(60)
    assert order == ["first in", "first out", "second in"]
    assert len(told) == 1 and told[0].startswith("the load into 'a' (since ")
    wh.close()


def test_serve_hands_cli_commands_over_before_anyone_opens_the_app(tmp_path):
    """`valuescope serve` owns the warehouse from its start: a CLI command run before the first
    browser session is handed to the server (it does not take the file itself)."""
    import subprocess
    import sys

    from tests.browser.server import running_app

    db = tmp_path / "served.duckdb"
    with running_app(db, timeout=180):
        info = jobserver.find_server(db)
        assert info is not None, "no job server announced before any session"
        out = subprocess.run([sys.executable, "-m", "analytics.cli", "datasets", "--db", str(db)],
                             capture_output=True, text=True, timeout=120)
        # the server holds the file: a CLI that opened it itself would exit 2 with the lock message
        assert out.returncode == 0, out.stderr
        assert "sample" in out.stdout


def test_a_command_run_for_a_client_counts_as_a_change(served):
    """Pages of `valuescope serve` share a version they read while nothing was written since
    (``Warehouse.changes``): a command handed to the server counts, whatever it wrote and how."""
    wh, _db, server = served

    def bare_write(argv, overrides):  # a write without transaction() or writer()
        wh.cursor().execute("INSERT INTO datasets (name) VALUES ('bare')")
        return 0

    server._run = bare_write
    info = json.loads(server.file.read_text())
    before = wh.changes
    assert jobserver.submit(info, ["ingest", "a.csv", "--dataset", "x"], {}, out=io.StringIO(),
                            err=io.StringIO()) == 0
    assert wh.changes == before + 1
    with wh.transaction() as tx:
        tx.execute("INSERT INTO datasets (name) VALUES ('tx')")
    assert wh.changes == before + 2
    with pytest.raises(RuntimeError):
        with wh.transaction() as tx:  # rolled back: nothing changed
            tx.execute("INSERT INTO datasets (name) VALUES ('rolled back')")
            raise RuntimeError("stop")
    assert wh.changes == before + 2
    with wh.writer("a load"):
        pass
    assert wh.changes == before + 3


class _ClosedPipe(io.StringIO):
    """A stdout whose reader has gone (`valuescope ... | head` after head exits)."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_output_into_a_closed_pipe_is_no_failure_for_a_command_handed_to_the_app(served, tmp_path):
    wh, db, server = served
    info = json.loads(server.file.read_text())
    src = _orders(tmp_path / "orders.csv")
    argv = ["ingest", str(src), "--dataset", "shop", "--db", str(db), "--no-prepare"]
    from analytics.cli import _parse, _resolved_paths

    err = io.StringIO()
    status = jobserver.submit(info, argv, _resolved_paths(_parse(argv)), out=_ClosedPipe(), err=err)
    assert status == 0 and "Traceback" not in err.getvalue(), err.getvalue()
    assert wh.has_dataset("shop")  # the command ran to its end in the app


def test_output_into_a_closed_pipe_is_no_error_message(tmp_path, capsys, monkeypatch):
    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(_orders(tmp_path / "orders.csv")), "--dataset", "shop", "--db", str(db),
                 "--no-prepare"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["datasets", "--db", str(db)]) == 141  # as a command stopped by SIGPIPE
    assert "error" not in capsys.readouterr().err


def test_a_server_that_stops_before_it_answers_is_said_and_the_command_runs_here(tmp_path):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def gone():  # reads the request, then dies without a word (kill -9 of the app mid-command)
        conn, _ = listener.accept()
        conn.makefile("rb").readline()
        conn.close()

    t = threading.Thread(target=gone)
    t.start()
    err = io.StringIO()
    status = jobserver.submit({"port": listener.getsockname()[1], "token": "t"}, ["datasets"], {},
                              out=io.StringIO(), err=err)
    t.join(10)
    listener.close()
    assert status is None  # the caller runs the command itself
    assert "the app server stopped before it answered; running the command in this process" in err.getvalue()
