"""Starting Spark for the Spark engine: local, a cluster master, or Spark Connect.

``spark_session(master=..., remote=...)`` returns a SparkSession configured the
way the engine's definitions need it:

* ``spark.sql.session.timeZone = UTC``: calendar days are UTC days whatever the
  machine's or the cluster's time zone (the warehouse's days are the days of its
  stored UTC-normalized timestamps);
* Arrow on, with large record batches (the per-customer scoring runs in
  ``mapInArrow`` over batches of customers).

Every problem a user can cause or fix (pyspark not installed, Java missing or
too old, a master or Spark Connect server that cannot be reached) raises
``SparkEngineError`` with one line saying what to do; nothing waits for minutes
on an unreachable host (a TCP check with a short timeout comes first).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlparse

#: what the README names for Java
JAVA_HINT = "install Java 17 or newer (Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless)"
PYSPARK_HINT = 'install the Spark extra: pip install -e ".[spark]"'
CONNECT_TIMEOUT_S = 5.0


class SparkEngineError(ValueError):
    """A Spark engine problem the user can fix (message is one user-facing line)."""


def java_version(java: str | None = None) -> int | None:
    """The major version of the ``java`` that Spark would start (``$JAVA_HOME/bin/java`` or
    ``java`` on PATH), or None when there is none."""
    if java is None:
        home = os.environ.get("JAVA_HOME")
        java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def check_java(java: str | None = None) -> int:
    """Java's major version; SparkEngineError when it is missing or older than 17."""
    v = java_version(java)
    if v is None:
        raise SparkEngineError(f"Java was not found (JAVA_HOME / PATH); --engine spark needs it: {JAVA_HINT}")
    if v < 17:
        raise SparkEngineError(f"Java {v} found; Spark 4 needs Java 17 or newer: {JAVA_HINT}")
    return v


def check_reachable(url: str, what: str, default_port: int) -> None:
    """A TCP connection to the host and port of ``url`` within a few seconds, or SparkEngineError."""
    parsed = urlparse(url)
    host = parsed.hostname
    try:
        port = parsed.port or default_port
    except ValueError:
        raise SparkEngineError(f"{what} {url!r} has an invalid port") from None
    if not host:
        raise SparkEngineError(f"{what} {url!r} names no host (e.g. spark://host:7077 or sc://host:15002)")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SparkEngineError(f"cannot reach the {what} at {host}:{port} ({reason}); check the URL "
                               "and that the cluster is running") from None


def _require_pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkEngineError(f"--engine spark needs pyspark, which is not installed: {PYSPARK_HINT}") from None


def spark_session(master: str | None = None, remote: str | None = None, *, app_name: str = "valuescope",
                  conf: dict | None = None):
    """A SparkSession for the engine: ``remote`` (``sc://host:port``, Spark Connect), else
    ``master`` (``local[*]`` by default, ``spark://host:7077``, ``yarn``, ``k8s://...``).

    An existing session in this process is reused (its settings are re-applied where
    they are runtime settings), so tests and a notebook pay the JVM start once.
    """
    if master and remote:
        raise SparkEngineError("give either --spark-master or --spark-remote, not both")
    if remote:
        if not remote.startswith("sc://"):
            raise SparkEngineError(f"--spark-remote must be a Spark Connect URL sc://host:port, got {remote!r}")
        check_reachable(remote, "Spark Connect server", 15002)
    else:
        asked, master = master, master or "local[*]"
        if master.startswith("spark://"):
            for hostport in master[len("spark://"):].split(","):  # standalone HA: host1:7077,host2:7077
                check_reachable("spark://" + hostport, "Spark master", 7077)
        check_java()
    _require_pyspark()
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
        "spark.sql.ansi.enabled": "false",  # null (not an error) for a bad cast, as DuckDB's try_cast
    }
    static = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    settings.update({k: str(v) for k, v in (conf or {}).items()})
    from pyspark.sql import SparkSession

    if remote:
        try:
            builder = SparkSession.builder.remote(remote).appName(app_name)
            spark = builder.getOrCreate()
        except ImportError as exc:
            raise SparkEngineError(f"Spark Connect needs pyspark's connect extra ({exc}): {PYSPARK_HINT}") from None
        except Exception as exc:  # noqa: BLE001 - grpc errors are many; one line is enough
            raise SparkEngineError(f"cannot open a Spark Connect session at {remote}: {_first_line(exc)}") from None
        for k, v in settings.items():
            spark.conf.set(k, v)
        return spark

    if master.startswith("local"):
        # Python workers run this interpreter (its packages, this library); on a cluster the
        # executors' Python needs valuescope installed (see the README)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None and (asked is None or active.sparkContext.master == master):
        for k, v in settings.items():
            active.conf.set(k, v)
        return active
    if active is not None:
        active.stop()
    builder = SparkSession.builder.master(master).appName(app_name)
    for k, v in {**static, **settings}.items():
        builder = builder.config(k, v)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - JVM start-up errors arrive as several types
        raise SparkEngineError(f"Spark did not start with master {master!r}: {_first_line(exc)}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
