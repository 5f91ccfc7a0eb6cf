"""The PostgreSQL test fixtures (tests/postgres.py, conftest.py) do what the store
tests rely on: a real server reached through SQLAlchemy + psycopg 3, one empty
database per test, an outage that can be switched on and off, and nothing left
running or on disk after ``stop()``."""

from __future__ import annotations

import os
import socket

import psutil
import pytest
import sqlalchemy as sa

from tests.postgres import PostgresServer, find_bin_dir, start_postgres
from tests.servers import still_running


def _table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table("runs", metadata,
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50), nullable=False))


def test_round_trip_through_sqlalchemy_and_psycopg(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    engine = sa.create_engine(postgres_url)
    try:
        assert engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        runs = _table(metadata := sa.MetaData())
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(runs), [{"name": "digits"}, {"name": "spiral"}])
        with engine.connect() as conn:
            names = conn.execute(sa.select(runs.c.name).order_by(runs.c.id)).scalars().all()
            assert names == ["digits", "spiral"]
            assert conn.execute(sa.text("SHOW server_encoding")).scalar() == "UTF8"
    finally:
        engine.dispose()


def test_each_test_gets_a_new_empty_database(postgres_server: PostgresServer,
                                             postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == []
            assert conn.execute(sa.text("SELECT current_database()")).scalar() != "postgres"
    finally:
        engine.dispose()


def test_two_databases_are_isolated(postgres_server: PostgresServer, postgres_url: str) -> None:
    other_url = postgres_server.create_database("isolation_other")
    first, second = sa.create_engine(postgres_url), sa.create_engine(other_url)
    try:
        assert other_url != postgres_url
        runs = _table(metadata := sa.MetaData())
        metadata.create_all(first)
        with first.begin() as conn:
            conn.execute(sa.insert(runs), {"name": "only here"})
        assert sa.inspect(second).get_table_names() == []
        # Same schema, own rows.
        metadata.create_all(second)
        with second.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 0
        with first.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 1
    finally:
        first.dispose()
        # An open session does not stop the drop (WITH (FORCE)).
        with second.connect():
            postgres_server.drop_database("isolation_other")
        second.dispose()
    with pytest.raises(sa.exc.OperationalError):
        sa.create_engine(other_url).connect().close()


def test_stop_server_and_start_server_simulate_an_outage(postgres_server: PostgresServer,
                                                         postgres_url: str) -> None:
    # pool_pre_ping: pooled connections die with the server; the ping replaces them.
    engine = sa.create_engine(postgres_url, pool_pre_ping=True,
                              connect_args={"connect_timeout": 2})
    runs = _table(metadata := sa.MetaData())
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(runs), {"name": "before the outage"})
        port = postgres_server.port

        postgres_server.stop_server()
        assert not postgres_server.is_running
        assert not postgres_server.accepts_connections()
        with pytest.raises(sa.exc.OperationalError), engine.connect():
            pass

        postgres_server.start_server()
        assert postgres_server.port == port, "a restart must keep the URL valid"
        with engine.begin() as conn:  # the same engine works again, data kept
            conn.execute(sa.insert(runs), {"name": "after the outage"})
            assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 2

        # restart() and a crash-like immediate stop (recovery on the next start).
        postgres_server.restart()
        postgres_server.stop_server(mode="immediate")
        postgres_server.start_server()
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 2
    finally:
        engine.dispose()


def test_server_does_not_run_as_root(postgres_server: PostgresServer) -> None:
    # PostgreSQL refuses root: as root, the helper runs it as the postgres user.
    postmaster = psutil.Process(postgres_server.postmaster_pid())
    expected = "postgres" if os.geteuid() == 0 else psutil.Process().username()
    assert postmaster.username() == expected


def test_stop_leaves_no_process_and_no_directory() -> None:
    server = start_postgres()
    try:
        procs = server.processes()
        assert len(procs) > 1, "a postmaster has background processes"
        # A session counts too: fast stop ends it.
        engine = sa.create_engine(server.url)
        conn = engine.connect()
        procs = server.processes()
        base_dir, port = server.base_dir, server.port
        assert base_dir.is_dir() and base_dir.parent.as_posix() == "/tmp"
    finally:
        server.stop()
    server.stop()  # twice is fine (atexit calls it again)
    assert still_running(procs) == [], [p.pid for p in still_running(procs)]
    assert not base_dir.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "something still listens on the port"
    with pytest.raises(RuntimeError, match="stop"):
        server.start_server()
    conn.invalidate()
    engine.dispose()


def test_missing_binaries_fail_and_name_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never a skip: the message tells how to install them.
    monkeypatch.setattr("tests.postgres.glob.glob", lambda pattern: [])
    with pytest.raises(RuntimeError, match="make test"):
        find_bin_dir()
