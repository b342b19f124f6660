"""Faults seen in real use, each a clean message and nothing lost: temporary files of a killed
load, a cut-off output file, a COMMIT that fails on a full disk, a full temporary folder, a
damaged or unusable warehouse file, out-of-range dates and arguments, unknown customers."""
from __future__ import annotations

import errno
import json
import gzip
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics.cli import main
from analytics.warehouse import Warehouse, WarehouseError, clean_temp, storage_error, temp_dir

ROOT = Path(__file__).resolve().parent.parent


def _orders_gz(path: Path, n: int = 200) -> Path:
    lines = ["customer_id,order_date,amount"] + [f"c{i % 20},2024-03-{1 + i % 28:02d},{5 + i}" for i in range(n)]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


_KILLED_LOAD = textwrap.dedent("""
    import sys
    from analytics.ingest import ingest
    from analytics.warehouse import Warehouse

    def progress(frac, message):
        if message == "checking rows":  # the transcoded copy exists and DuckDB read it: stop here
            print("copied", flush=True)
            sys.stdin.readline()

    ingest(Warehouse(sys.argv[1]), sys.argv[2], "big", progress=progress)
""")


def test_temporary_files_of_a_load_killed_with_kill_9_are_removed_at_the_next_start(tmp_path):
    db = tmp_path / "data" / "w.duckdb"
    src = _orders_gz(tmp_path / "orders.csv.gz")
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_LOAD, str(db), str(src)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert proc.stdout.readline().strip() == "copied"
        folder = temp_dir(db)
        left = [p.name for p in folder.iterdir()]
        assert folder == db.parent / "tmp"  # kept under the data folder, not the system's /tmp
        assert any(n.startswith(f"ingest-{proc.pid}-") for n in left), left
        proc.kill()  # kill -9: no clean-up code runs
        proc.wait()
        assert any(n.startswith(f"ingest-{proc.pid}-") for n in os.listdir(folder))
        mine = folder / f"ingest-{os.getpid()}-keep.csv"  # a live process's file is left alone
        mine.write_text("x")
        wh = Warehouse(db)  # the next start
        rest = sorted(os.listdir(folder))
        assert not any(f"-{proc.pid}-" in n or n == f"duckdb-{proc.pid}" for n in rest), rest
        assert mine.exists()
        assert not wh.has_dataset("big")  # the killed load wrote nothing
        wh.close()
    finally:
        proc.kill()
        proc.wait()


def test_clean_temp_only_touches_tagged_entries_of_dead_processes(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / f"ingest-{pid}-a.csv").write_text("x")
    (tmp_path / f"duckdb-{pid}").mkdir()
    (tmp_path / f"duckdb-{pid}" / "spill.tmp").write_text("y")
    (tmp_path / "notes.txt").write_text("mine")
    removed = sorted(p.name for p in clean_temp(tmp_path))
    assert removed == [f"duckdb-{pid}", f"ingest-{pid}-a.csv"]
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


def test_score_out_is_written_under_a_temporary_name_and_renamed(tmp_path, monkeypatch, capsys):
    import analytics.export as export_mod

    db = str(tmp_path / "w.duckdb")
    src = _orders_gz(tmp_path / "o.csv.gz")
    assert main(["ingest", str(src), "--dataset", "shop", "--db", db, "--no-prepare"]) == 0
    out = tmp_path / "scores.csv"
    out.write_text("the previous run\n")
    real = export_mod.to_safe_csv

    def dies_halfway(frame, path=None, **kw):
        Path(path).write_text("customer_id,rfm\nc1,")  # part of the file, then the process is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(export_mod, "to_safe_csv", dies_halfway)
    assert main(["score", "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd", "--out", str(out),
                 "--db", db]) == 130
    assert out.read_text() == "the previous run\n"  # never a cut-off file under the asked name
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []
    monkeypatch.setattr(export_mod, "to_safe_csv", real)
    capsys.readouterr()
    assert main(["score", "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd", "--out", str(out),
                 "--db", db]) == 0
    assert len(pd.read_csv(out)) == 20 and (tmp_path / "scores.csv.json").exists()


def test_the_partial_file_of_a_write_killed_with_kill_9_goes_at_the_next_write(tmp_path, capsys):
    # kill -9 mid-write leaves the temporary name behind (no clean-up code runs); the next write of
    # the same file removes it, but not a partial file of a process still writing
    db = str(tmp_path / "w.duckdb")
    assert main(["ingest", str(_orders_gz(tmp_path / "o.csv.gz")), "--dataset", "shop", "--db", db,
                 "--no-prepare"]) == 0
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f".scores.csv.partial-{int(dead.stdout)}-0a1b2c3d"
    left.write_text("customer_id,rfm\nc1,")
    live = tmp_path / f".scores.csv.partial-{os.getpid()}-00000000"
    live.write_text("being written")
    other = tmp_path / f".other.csv.partial-{int(dead.stdout)}-0a1b2c3d"
    other.write_text("another file's")
    out = tmp_path / "scores.csv"
    assert main(["score", "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd", "--out", str(out),
                 "--db", db]) == 0
    assert not left.exists() and live.exists() and other.exists()
    assert len(pd.read_csv(out)) == 20


class _FullDiskOnCommit:
    """A cursor whose COMMIT fails as DuckDB's does on a full disk (the transaction is already over)."""

    def __init__(self, cur):
        self._cur = cur

    def execute(self, sql, *args, **kw):
        if isinstance(sql, str) and sql.strip().upper() == "COMMIT":
            self._cur.execute("ROLLBACK")
            raise duckdb.TransactionException(
                'TransactionContext Error: Failed to commit: Could not write file "w.duckdb": No space left on device')
        self._cur.execute(sql, *args, **kw)
        return self

    def __getattr__(self, name):
        return getattr(self._cur, name)


def test_a_commit_failing_on_a_full_disk_is_a_message_and_loses_nothing(tmp_path, monkeypatch, capsys):
    db = tmp_path / "w.duckdb"
    src = _orders_gz(tmp_path / "o.csv.gz")
    assert main(["ingest", str(src), "--dataset", "shop", "--db", str(db), "--no-prepare"]) == 0
    from analytics.warehouse import get_warehouse

    wh = get_warehouse(db)
    before = wh.cursor().execute("SELECT count(*) FROM events").fetchone()[0]
    real = wh.cursor
    monkeypatch.setattr(wh, "cursor", lambda: _FullDiskOnCommit(real()))
    capsys.readouterr()
    more = _orders_gz(tmp_path / "more.csv.gz", n=260)
    assert main(["ingest", str(more), "--dataset", "shop", "--db", str(db), "--no-prepare"]) == 2
    err = capsys.readouterr().err
    assert "disk holding the warehouse is full" in err, err
    assert "another session" not in err and "another change" not in err  # not reported as a concurrent write
    assert "cannot rollback" not in err and "Traceback" not in err and err.count("\n") == 1
    with pytest.raises(WarehouseError, match="disk holding the warehouse is full"):
        with wh.transaction() as tx:
            tx.execute("INSERT INTO settings VALUES ('k', 'v')")
    monkeypatch.setattr(wh, "cursor", real)
    assert wh.cursor().execute("SELECT count(*) FROM events").fetchone()[0] == before
    assert wh.setting("k") is None


class _FullDiskOnWrite(_FullDiskOnCommit):
    """As on a full disk: a COMMIT fails only when the transaction wrote something."""

    def __init__(self, cur):
        super().__init__(cur)
        self._wrote = False

    def execute(self, sql, *args, **kw):
        head = sql.strip().split(None, 1)[0].upper() if isinstance(sql, str) and sql.strip() else ""
        if head in ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP"):
            self._wrote = True
        if head == "COMMIT" and not self._wrote:
            self._cur.execute(sql, *args, **kw)
            return self
        if head == "BEGIN":
            self._wrote = False
        return super().execute(sql, *args, **kw)


def test_scores_are_still_written_to_a_file_when_the_warehouse_disk_is_full(tmp_path, monkeypatch, capsys):
    # the stored customer summary is only kept for reuse: a full disk under the warehouse must not
    # stop `valuescope score --out` writing the scores to a file on another disk
    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(_orders_gz(tmp_path / "o.csv.gz")), "--dataset", "shop", "--db", str(db),
                 "--no-prepare"]) == 0
    from analytics.warehouse import get_warehouse

    wh = get_warehouse(db)
    real = wh.cursor
    monkeypatch.setattr(wh, "cursor", lambda: _FullDiskOnWrite(real()))
    out = tmp_path / "full.csv"
    args = ["score", "--dataset", "shop", "--as-of", "2024-03-31", "--no-bgnbd", "--db", str(db)]
    capsys.readouterr()
    assert main(args + ["--out", str(out)]) == 0, capsys.readouterr().err
    assert wh.cursor().execute("SELECT count(*) FROM customer_summary_runs").fetchone()[0] == 0  # nothing kept
    monkeypatch.setattr(wh, "cursor", real)
    ref = tmp_path / "ref.csv"
    assert main(args + ["--out", str(ref)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(ref))
    assert len(pd.read_csv(out)) == 20


def test_a_full_temporary_folder_is_a_message(tmp_path, monkeypatch, capsys):
    import analytics.ingest.dialect as dialect

    real_open = open

    class Full:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device", str(self._f.name))

        def __getattr__(self, name):
            return getattr(self._f, name)

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return Full(f) if "x" in mode else f

    monkeypatch.setattr(dialect, "open", fake_open, raising=False)
    src = _orders_gz(tmp_path / "o.csv.gz")
    assert main(["ingest", str(src), "--dataset", "shop", "--db", str(tmp_path / "w.duckdb"), "--no-prepare"]) == 2
    err = capsys.readouterr().err
    assert "temporary folder is full" in err and "nothing" in err and "Traceback" not in err
    assert [p for p in temp_dir(tmp_path / "w.duckdb").iterdir()] == []  # the partial copy is removed


@pytest.mark.parametrize("text, expected", [
    ('Out of Memory Error: failed to offload data block of size 256.0 KiB (Could not write file '
     '"/d/tmp/duckdb-7/duckdb_temp_storage-0.tmp": No space left on device)', "temporary folder is full"),
    ('IO Error: Could not write file "/d/w.duckdb": No space left on device', "disk holding the warehouse is full"),
    ("Corrupt database file: computed checksum 1 does not match stored checksum 2 in block at location 12288",
     "damaged"),
])
def test_storage_errors_are_named(text, expected):
    assert expected in str(storage_error(duckdb.Error(text), "the load failed"))


def _damaged(tmp_path, lo: float, hi: float) -> Path:
    """A warehouse with 300k events whose bytes between ``lo`` and ``hi`` (fractions of the file,
    after the headers) are flipped: a damaged block."""
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    cur = wh.cursor()
    cur.execute("INSERT INTO datasets (name) VALUES ('shop')")
    cur.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) SELECT 'shop', "
                "'c' || (range % 1000), TIMESTAMP '2024-01-01' + INTERVAL (range % 300) DAY, 'purchase', range "
                "FROM range(300000)")
    wh.close()
    data = bytearray(db.read_bytes())
    for i in range(max(3 * 4096, int(len(data) * lo)), int(len(data) * hi)):
        data[i] ^= 0xFF
    db.write_bytes(bytes(data))
    return db


@pytest.mark.parametrize("where, lo, hi", [("the events", 0.0, 0.4), ("everything", 0.0, 1.0)])
def test_a_damaged_warehouse_is_a_message_in_the_cli(tmp_path, capsys, where, lo, hi):
    db = _damaged(tmp_path, lo, hi)
    codes = [main(["datasets", "--db", str(db)]),
             main(["export", "--dataset", "shop", "--out", str(tmp_path / "x.csv"), "--db", str(db)])]
    err = capsys.readouterr().err
    assert codes == [2, 2] and "Traceback" not in err
    assert err.count("file is damaged") == 2 and "another process" not in err, err
    assert len(err.strip().splitlines()) == 2 and not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("kind", ["not duckdb", "folder", "truncated", "read-only"])
def test_every_failure_to_open_says_what_is_wrong_without_lock_advice(tmp_path, capsys, monkeypatch, kind):
    db = tmp_path / "w.duckdb"
    if kind == "not duckdb":
        db.write_text("customer_id,amount\nc1,10\n" * 200)
        expected = "not a DuckDB database"
    elif kind == "folder":
        db.mkdir()
        expected = "is a folder"
    elif kind == "truncated":
        Warehouse(db).close()
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
        expected = "cut short"
    else:
        def refuse(path, read_only=False):
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Permission denied')

        monkeypatch.setattr(duckdb, "connect", refuse)
        expected = "cannot be written"
    assert main(["datasets", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "another process" not in err and "Only one process" not in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_out_of_range_dates_and_arguments_and_unknown_customers(tmp_path, capsys):
    db = str(tmp_path / "w.duckdb")
    lines = ["customer_id,order_date,amount,item_id"] + [f"c{i % 9},2024-03-{1 + i % 28:02d},{5 + i},i{i % 5}"
                                                          for i in range(120)]
    src = tmp_path / "o.csv"
    src.write_text("\n".join(lines) + "\n")
    assert main(["ingest", str(src), "--dataset", "shop", "--db", db, "--no-prepare"]) == 0
    capsys.readouterr()
    assert main(["score", "--dataset", "shop", "--as-of", "9999-12-31", "--out", str(tmp_path / "s.csv"),
                 "--db", db]) == 2
    err = capsys.readouterr().err
    assert "out of range" in err and "2200-12-31" in err and "year 10000" not in err
    with pytest.raises(SystemExit) as bad:
        main(["ingest", str(src), "--dataset", "x", "--max-decompressed-gb", "-1", "--db", db])
    assert bad.value.code == 2
    assert "must be a positive number of gigabytes" in capsys.readouterr().err
    assert main(["recommend", "items", "--dataset", "shop", "--customer", "NOPE", "--db", db]) == 2
    assert "no customer 'NOPE' in dataset 'shop'" in capsys.readouterr().err
    assert main(["recommend", "items", "--dataset", "shop", "--customer", "NOPE", "--customer", "c1",
                 "--db", db]) == 0
    captured = capsys.readouterr()
    assert "skipped 1 unknown customer id(s): 'NOPE'" in captured.err and "NOPE" not in captured.out


def test_a_full_temporary_folder_is_named_when_the_write_error_names_no_file(tmp_path, monkeypatch, capsys):
    # a real full disk under the copy: Python's write raises ENOSPC without a file name, so the
    # message cannot come from the error's text; it must not blame the warehouse's disk
    import analytics.ingest.dialect as dialect

    real_open = open

    class Full:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._f, name)

    def fake_open(path, mode="r", *a, **k):
        f = real_open(path, mode, *a, **k)
        return Full(f) if "x" in mode else f

    monkeypatch.setattr(dialect, "open", fake_open, raising=False)
    db = tmp_path / "w.duckdb"
    src = _orders_gz(tmp_path / "o.csv.gz")
    assert main(["ingest", str(src), "--dataset", "shop", "--db", str(db), "--no-prepare"]) == 2
    err = capsys.readouterr().err
    assert f"the temporary folder is full ({temp_dir(db)}: its disk has no space left)" in err, err
    assert "VALUESCOPE_TMP" in err and "warehouse is full" not in err and "Traceback" not in err


def test_a_warehouse_cut_short_after_it_opened_is_named(tmp_path, capsys):
    # the catalog is rewritten into blocks freed early in the file (as after loads and deletes), so
    # a file cut in half still opens and the failure comes on the first read of the events
    db = tmp_path / "w.duckdb"
    wh = Warehouse(db)
    cur = wh.cursor()
    cur.execute("CREATE TABLE filler AS SELECT range AS x, 'pad' || range AS y FROM range(300000)")
    cur.execute("CHECKPOINT")
    cur.execute("INSERT INTO datasets (name) VALUES ('shop')")
    cur.execute("INSERT INTO events (dataset, customer_id, event_time, event_type, revenue) SELECT 'shop', "
                "'c' || (range % 1000), TIMESTAMP '2024-01-01' + INTERVAL (range % 300) DAY, 'purchase', range "
                "FROM range(300000)")
    cur.execute("CHECKPOINT")
    cur.execute("DROP TABLE filler")
    cur.execute("CHECKPOINT")
    cur.execute("INSERT INTO settings VALUES ('k', 'v')")
    wh.close()
    size = db.stat().st_size
    with open(db, "r+b") as fh:
        fh.truncate(size // 2)
    code = main(["export", "--dataset", "shop", "--out", str(tmp_path / "x.csv"), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "cut short" in err and "restore it from a backup" in err and "another process" not in err, err


def test_a_preparation_failing_on_a_damaged_file_says_what_to_do(tmp_path, capsys):
    db = _damaged(tmp_path, 0.0, 0.4)
    code = main(["prepare", "--dataset", "shop", "--db", str(db)])
    out, err = capsys.readouterr()
    assert code in (1, 2) and "Traceback" not in err
    if code == 1:  # the preparation started and failed at a stage: its summary and its line say why
        assert "file is damaged" in json.loads(out)["error"]
    assert "file is damaged" in err and "restore it from a backup" in err, err
