"""The private PostgreSQL cluster the end-to-end tests run Airflow on (tests/support/postgres.py)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.postgres import PostgresServer, start_postgres


def _psql(server: PostgresServer, target: str, sql: str) -> str:
    """``psql`` with a connection string (URL or libpq DSN), as a client would connect."""
    done = subprocess.run(
        [str(server.bindir / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", target, "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_cluster_serves_url_dsn_and_socket_then_vanishes(tmp_path: Path) -> None:
    with start_postgres(tmp_path) as server:
        assert server.url == f"postgresql://gateway@127.0.0.1:{server.port}/gateway"
        assert _psql(server, server.url, "SELECT current_database()") == "gateway"
        assert _psql(server, server.dsn, "SHOW listen_addresses") == "127.0.0.1"
        assert (server.socket_dir / f".s.PGSQL.{server.port}").exists()
        # initdb refuses root: the cluster belongs to an unprivileged user when we are root.
        if os.geteuid() == 0:
            assert server.data_dir.stat().st_uid != 0

        url = server.create_database("airflow_meta")
        assert url.endswith(f":{server.port}/airflow_meta")
        _psql(server, url, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
        assert _psql(server, url, "SELECT x FROM t") == "42"
        assert server.psql("SELECT count(*) FROM t", dbname="airflow_meta").strip() == "1"
        root, port = server.root, server.port

    assert not root.exists()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    server.stop()  # idempotent
