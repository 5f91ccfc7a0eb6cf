"""The run store (playground/store.py) on a real SQLite file and a real PostgreSQL.

Every test that takes the ``store`` (or ``store_url``) fixture runs on both
back ends. Nothing about the database is mocked: tests read the tables back
with plain SQL to check what really is (and is not) stored.
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import playground.store as store_module
from playground.evaluation import Evaluation
from playground.store import (
    MIGRATIONS,
    DatasetIdentity,
    RunStore,
    StoreUnavailableError,
    upgrade,
)
from playground.store_schema import (
    METADATA,
    checkpoints,
    datasets,
    epoch_records,
    evaluations,
    runs,
    servers,
    weight_snapshots,
    workspaces,
)
from playground.store_writer import StoreWriter
from tests.store_util import BUILTIN, make_run, rec, upload

ROOT = Path(__file__).resolve().parents[1]
def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


#: The newest migration shipped (a new database is migrated to it).
HEAD = _head()
RUN_TABLES = (epoch_records, evaluations, checkpoints, weight_snapshots)


# ---- fixtures and helpers ------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """An empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    s = RunStore(store_url)
    yield s
    s.close()


@pytest.fixture
def ws(store):
    return store.workspace_for_token("token-of-the-test-browser")


def count(store: RunStore, table: sa.Table, *where) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)
                            ).scalar_one()


def execute(store: RunStore, stmt) -> None:
    with store.engine.begin() as conn:
        conn.execute(stmt)


def revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def column_names(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def evaluation(epoch: int, accuracy: float, macro_f1: float, n: int = 5) -> Evaluation:
    rng = np.random.default_rng(epoch)
    return Evaluation(
        epoch=epoch, loss=0.5 / epoch,
        summary={"labels": [0, 1, 2], "accuracy": accuracy, "macro_f1": macro_f1,
                 "support": [2, 2, 1]},
        y_pred=rng.integers(0, 3, n).astype(np.int16),
        confidence=rng.random(n).astype(np.float32),
        grid_confidence=rng.random((3, 4)),  # float64, 2-D
    )


def assert_same_records(got, want) -> None:
    """Equal field by field; NaN equals NaN."""
    assert [r.epoch for r in got] == [r.epoch for r in want]
    for g, w in zip(got, want):
        for field in w.__dataclass_fields__:
            a, b = getattr(g, field), getattr(w, field)
            if isinstance(b, tuple):
                assert len(a) == len(b), (g.epoch, field)
                for x, y in zip(a, b):
                    assert x == y or (math.isnan(x) and math.isnan(y)), (g.epoch, field, a, b)
            elif isinstance(b, float) and math.isnan(b):
                assert isinstance(a, float) and math.isnan(a), (g.epoch, field, a)
            else:
                assert a == b, (g.epoch, field, a, b)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- 1. migrations ------------------------------------------------------------------
def test_new_database_is_migrated_to_head(store):
    assert store.revision == HEAD
    assert revision(store.engine) == HEAD
    assert {t.name for t in METADATA.sorted_tables} <= table_names(store.engine)


def test_migrated_schema_equals_metadata(store):
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, METADATA)
    assert diff == []


def test_upgrade_twice_is_a_no_op(store, ws):
    make_run(store, ws)
    before = {t: column_names(store.engine, t) for t in table_names(store.engine)}
    assert upgrade(store.engine) == HEAD
    assert upgrade(store.engine) == HEAD
    assert {t: column_names(store.engine, t) for t in table_names(store.engine)} == before
    assert count(store, sa.table("alembic_version")) == 1
    assert store.list_runs(ws)[1] == 1


FAILING_MIGRATION = '''"""a migration that fails half-way

Revision ID: 0999
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "0999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("experiments", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO experiments (id) VALUES (1)")
    op.add_column("workspaces", sa.Column("extra", sa.Integer, nullable=True))
    raise RuntimeError("boom in migration 0999")


def downgrade() -> None:
    pass
'''


@pytest.fixture
def failing_scripts(tmp_path) -> Path:
    """A copy of the store's migrations plus a 0999 that creates a table, then fails."""
    scripts = tmp_path / "migrations"
    (scripts / "versions").mkdir(parents=True)
    shutil.copy(MIGRATIONS / "env.py", scripts / "env.py")
    shutil.copy(MIGRATIONS / "script.py.mako", scripts / "script.py.mako")
    for version in (MIGRATIONS / "versions").glob("*.py"):
        shutil.copy(version, scripts / "versions" / version.name)
    (scripts / "versions" / "0999_boom.py").write_text(FAILING_MIGRATION.format(head=HEAD))
    return scripts


def assert_previous_schema_usable(store: RunStore, ws: str, run_id: str) -> None:
    assert revision(store.engine) == HEAD
    assert "experiments" not in table_names(store.engine)
    assert "extra" not in column_names(store.engine, "workspaces")
    assert store.workspace_for_token("token-of-the-test-browser") == ws
    assert [r.epoch for r in store.records(run_id)] == [1, 2]
    store.add_records(run_id, [rec(3)])  # and writable
    assert [r.epoch for r in store.records(run_id)] == [1, 2, 3]
    if store.backend == "postgresql":  # upgrade's advisory lock was released
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").scalar_one() == 0


def test_failing_migration_leaves_previous_schema(store, ws, failing_scripts):
    run = make_run(store, ws)
    store.add_records(run.id, [rec(1), rec(2)])
    with pytest.raises(RuntimeError, match="boom in migration 0999"):
        upgrade(store.engine, failing_scripts)
    assert_previous_schema_usable(store, ws, run.id)


def test_store_refuses_to_open_when_a_migration_fails(store_url, failing_scripts,
                                                      monkeypatch):
    store = RunStore(store_url)
    ws = store.workspace_for_token("token-of-the-test-browser")
    run = make_run(store, ws)
    store.add_records(run.id, [rec(1), rec(2)])
    monkeypatch.setattr(store_module, "upgrade",
                        functools.partial(upgrade, script_location=failing_scripts))
    with pytest.raises(StoreUnavailableError, match="could not be upgraded") as info:
        RunStore(store_url)
    assert "boom in migration 0999" in str(info.value)
    assert_previous_schema_usable(store, ws, run.id)
    store.close()


# ---- 2. workspaces ----------------------------------------------------------------------
def test_workspaces_by_token_and_token_never_stored(store):
    token = "Sup3r-Secret-Browser-Token_xyz"
    a = store.workspace_for_token(token)
    assert store.workspace_for_token(token) == a
    b = store.workspace_for_token(token + "2")
    assert b != a
    assert count(store, workspaces) == 2
    with store.engine.connect() as conn:
        for table in METADATA.sorted_tables:
            for row in conn.execute(sa.select(table)):
                assert token not in repr(tuple(row)), table.name


# ---- 3. runs --------------------------------------------------------------------------
def test_run_numbers_and_unguessable_ids(store, ws):
    created = [make_run(store, ws) for _ in range(200)]
    assert [r.number for r in created] == list(range(1, 201))
    assert [r.name for r in created[:2]] == ["Run 1", "Run 2"]
    ids = [r.id for r in created]
    assert len(set(ids)) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16,}", i) for i in ids)
    other = store.workspace_for_token("another browser")
    assert make_run(store, other).number == 1  # numbered per workspace


def test_get_run_and_list_runs_newest_first_paginated(store, ws):
    created = [make_run(store, ws, classes=np.array([3, 1, 2])) for _ in range(7)]
    other = store.workspace_for_token("another browser")
    make_run(store, other)
    run = store.get_run(created[0].id)
    assert run == created[0]
    assert run.classes == (3, 1, 2) and run.config == {"hidden": [16], "lr": 0.05}
    assert run.status == "queued" and run.active and not run.has_model
    assert store.get_run("no-such-run") is None
    newest_first = [r.id for r in reversed(created)]
    page1, total = store.list_runs(ws, offset=0, limit=3)
    page3, total3 = store.list_runs(ws, offset=6, limit=3)
    assert total == total3 == 7
    assert [r.id for r in page1] == newest_first[:3]
    assert [r.id for r in store.list_runs(ws, offset=3, limit=3)[0]] == newest_first[3:6]
    assert [r.id for r in page3] == newest_first[6:]
    assert store.list_runs(ws, offset=7, limit=3) == ([], 7)


def test_update_run_only_within_owning_workspace(store, ws):
    run = make_run(store, ws)
    other = store.workspace_for_token("another browser")
    assert store.update_run(run.id, other, name="hijacked", pinned=True) is False
    assert store.get_run(run.id).name == "Run 1" and not store.get_run(run.id).pinned
    assert store.update_run(run.id, ws, name="  baseline  ", notes="lr 0.05", pinned=True)
    got = store.get_run(run.id)
    assert (got.name, got.notes, got.pinned) == ("baseline", "lr 0.05", True)
    assert store.update_run(run.id, ws, name="   ")
    assert store.get_run(run.id).name == "Untitled run"
    assert store.update_run("no-such-run", ws, name="x") is False
    with pytest.raises(ValueError, match="model"):
        store.update_run(run.id, ws, model=b"evil")


def test_records_in_batches_round_trip(store, ws):
    run = make_run(store, ws)
    nan = float("nan")
    want = [rec(e) for e in range(1, 11)]
    want[1] = rec(2, val=False)  # no validation set: val_loss None
    want[4] = rec(5, train_loss=nan)  # diverged
    # batches out of order: records() sorts by epoch
    store.add_records(run.id, want[3:6])
    store.add_records(run.id, want[0:3])
    store.add_records(run.id, want[6:10])
    assert_same_records(store.records(run.id), want)
    assert_same_records(store.records(run.id, after_epoch=6), want[6:])
    assert store.records(run.id)[1].val_loss is None
    assert math.isnan(store.records(run.id)[4].train_loss)
    row = store.get_run(run.id)
    assert row.epochs_done == 10 and row.train_seconds == want[9].elapsed
    assert row.train_loss == want[9].train_loss and row.val_loss == want[9].val_loss


def test_non_finite_norms_come_back_as_nan(store, ws):
    run = make_run(store, ws)
    r = rec(1)
    bad = type(r)(**{**{f: getattr(r, f) for f in r.__dataclass_fields__},
                     "weight_norms": (float("inf"), 1.0), "grad_norms": (float("nan"), 2.0)})
    store.add_records(run.id, [bad])
    got = store.records(run.id)[0]
    assert math.isnan(got.weight_norms[0]) and got.weight_norms[1] == 1.0
    assert math.isnan(got.grad_norms[0]) and got.grad_norms[1] == 2.0


def test_duplicate_epochs_are_ignored(store, ws):
    run = make_run(store, ws)
    want = [rec(e) for e in range(1, 6)]
    store.add_records(run.id, want)
    store.add_records(run.id, [rec(3, train_loss=99.0), rec(4, train_loss=99.0)])
    store.add_records(run.id, [rec(6), rec(6, train_loss=99.0)])  # duplicate within a batch
    assert_same_records(store.records(run.id), [*want, rec(6)])
    assert count(store, epoch_records, epoch_records.c.run_id == run.id) == 6


def test_truncate_records(store, ws):
    run = make_run(store, ws)
    other = make_run(store, ws)
    store.add_records(run.id, [rec(e) for e in range(1, 11)])
    store.add_records(other.id, [rec(e) for e in range(1, 11)])
    store.truncate_records(run.id, 4)
    assert [r.epoch for r in store.records(run.id)] == [1, 2, 3, 4]
    assert store.get_run(run.id).epochs_done == 4
    assert len(store.records(other.id)) == 10
    store.truncate_records(run.id, 8)  # never raises epochs_done
    assert store.get_run(run.id).epochs_done == 4
    store.add_records(run.id, [rec(e) for e in range(5, 8)])  # trained again
    assert [r.epoch for r in store.records(run.id)] == list(range(1, 8))


def test_evaluation_latest_final_and_arrays(store, ws):
    run = make_run(store, ws)
    assert store.evaluation(run.id) is None
    first, second = evaluation(2, 0.5, 0.4), evaluation(4, 0.75, 0.625)
    store.add_records(run.id, [rec(1), rec(2)], evaluation=first)
    store.add_records(run.id, [rec(3), rec(4)], evaluation=second)
    got = store.evaluation(run.id)
    assert got.epoch == 4 and got.summary == second.summary and got.loss == second.loss
    assert got.grid_pred is None
    assert (store.get_run(run.id).test_accuracy, store.get_run(run.id).macro_f1) == (0.75, 0.625)
    for name in ("y_pred", "confidence", "grid_confidence"):
        array = getattr(got, name)
        assert array.dtype == getattr(second, name).dtype
        np.testing.assert_array_equal(array, getattr(second, name))
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 0
    final = evaluation(5, 0.875, 0.8125)
    store.finish_run(run.id, "done", "Finished.", final, b"model")
    assert store.evaluation(run.id).epoch == 5
    # a later "latest" (e.g. written late by the writer) does not hide the final one
    store.add_records(run.id, [], evaluation=evaluation(3, 0.1, 0.1))
    assert store.evaluation(run.id).epoch == 5
    np.testing.assert_array_equal(store.evaluation(run.id).y_pred, final.y_pred)
    assert count(store, evaluations, evaluations.c.run_id == run.id) == 2


def test_truncate_records_forgets_evaluations_of_dropped_epochs(store, ws):
    """A resumed run (resume_run truncates to its checkpoint) must not keep showing the
    evaluation of weights it threw away: after truncating to epoch 6, the run's
    evaluation is not the final one of epoch 10 but the one of the epochs trained again."""
    run = make_run(store, ws)
    store.add_records(run.id, [rec(e) for e in range(1, 11)])
    store.finish_run(run.id, "stopped", "Stopped.", evaluation(10, 0.9, 0.9), b"model")
    store.truncate_records(run.id, 6)
    ev = store.evaluation(run.id)
    assert ev is None or ev.epoch <= 6
    store.add_records(run.id, [rec(7), rec(8)], evaluation=evaluation(8, 0.8, 0.8))
    assert store.evaluation(run.id).epoch == 8


def test_checkpoint_keeps_only_the_newest(store, ws):
    run = make_run(store, ws)
    assert store.checkpoint(run.id) is None
    store.save_checkpoint(run.id, 3, b"state-3" * 100)
    store.save_checkpoint(run.id, 7, b"state-7\x00\xff")
    assert store.checkpoint(run.id) == (7, b"state-7\x00\xff")
    assert count(store, checkpoints, checkpoints.c.run_id == run.id) == 1


def test_finish_run_stores_outcome_and_model(store, ws):
    run = make_run(store, ws, status="running")
    model = bytes(range(256)) * 40
    store.add_records(run.id, [rec(1)])
    store.finish_run(run.id, "done", "Trained 1 epoch.", evaluation(1, 0.625, 0.5), model)
    got = store.get_run(run.id)
    assert (got.status, got.message, got.has_model) == ("done", "Trained 1 epoch.", True)
    assert (got.test_accuracy, got.macro_f1) == (0.625, 0.5)
    assert got.finished_at is not None and not got.active
    assert store.model(run.id) == model and isinstance(store.model(run.id), bytes)
    failed = make_run(store, ws)
    store.finish_run(failed.id, "failed", "Out of memory.", None, None)
    assert store.model(failed.id) is None and not store.get_run(failed.id).has_model
    assert store.get_run(failed.id).test_accuracy is None


# ---- 4. delete ------------------------------------------------------------------------
def fill(store: RunStore, run_id: str) -> None:
    """Give a run a row in every per-run table."""
    store.add_records(run_id, [rec(1), rec(2)], evaluation=evaluation(2, 0.5, 0.5))
    store.save_checkpoint(run_id, 2, b"ckpt")
    store.finish_run(run_id, "done", "Done.", evaluation(2, 0.5, 0.5), b"model")
    execute(store, weight_snapshots.insert().values(run_id=run_id, epoch=2, data=b"w"))


def rows_of(store: RunStore, run_id: str) -> dict[str, int]:
    out = {t.name: count(store, t, t.c.run_id == run_id) for t in RUN_TABLES}
    out["runs"] = count(store, runs, runs.c.id == run_id)
    return out


def test_delete_really_deletes(store, ws):
    data = upload(b"a,b\n1,2\n")
    a, b = make_run(store, ws, dataset=data), make_run(store, ws, dataset=data)
    other_ws = store.workspace_for_token("another browser")
    c = make_run(store, other_ws)
    for run in (a, b, c):
        fill(store, run.id)
    assert set(rows_of(store, a.id).values()) == {1, 2}  # every table has rows

    assert store.delete_runs(ws, [a.id, c.id]) == 1  # c belongs to another workspace
    assert rows_of(store, a.id) == dict.fromkeys(rows_of(store, a.id), 0)
    assert store.get_run(a.id) is None and store.model(a.id) is None
    assert rows_of(store, c.id)["runs"] == 1 and len(store.records(c.id)) == 2
    assert rows_of(store, b.id)["epoch_records"] == 2
    assert store.dataset(data.hash) == data  # b still uses the upload

    assert store.delete_runs(ws, [b.id]) == 1
    assert store.dataset(data.hash) is None
    assert count(store, datasets, datasets.c.hash == data.hash) == 0
    assert store.delete_runs(ws, []) == 0
    assert store.delete_runs(other_ws, [c.id]) == 1
    assert count(store, runs) == 0
    assert all(count(store, t) == 0 for t in RUN_TABLES)


# ---- 5. retention -----------------------------------------------------------------------
def test_enforce_run_limit(store, ws):
    made = [make_run(store, ws) for _ in range(6)]
    for i, status in enumerate(["done", "done", "running", "stopped", "queued", "failed"]):
        if status in ("done", "stopped", "failed"):
            store.finish_run(made[i].id, status, "", None, b"m")
        else:
            store.set_status(made[i].id, status, "")
    store.update_run(made[1].id, ws, pinned=True)
    store.update_run(made[5].id, ws, name="newest finished")
    paused = make_run(store, ws, status="paused")
    other = store.workspace_for_token("another browser")
    others = [make_run(store, other) for _ in range(3)]
    for r in others:
        store.finish_run(r.id, "done", "", None, None)

    assert store.enforce_run_limit(ws, 10) == []
    assert store.enforce_run_limit(ws, 5) == ["Run 1", "Run 4"]  # 7 runs, 2 too many
    assert store.enforce_run_limit(ws, 5) == []
    # only one finished unpinned run is left to drop; pinned and active runs stay
    assert store.enforce_run_limit(ws, 1) == ["newest finished"]
    kept = {r.id for r in store.list_runs(ws)[0]}
    assert kept == {made[1].id, made[2].id, made[4].id, paused.id}
    assert store.list_runs(other)[1] == 3
    assert rows_of(store, made[0].id)["runs"] == 0


def test_purge_stale_workspaces(store):
    old = store.workspace_for_token("old browser")
    new = store.workspace_for_token("new browser")
    data = upload(b"only the old workspace used this")
    old_runs = [make_run(store, old, dataset=data), make_run(store, old)]
    for r in old_runs:
        fill(store, r.id)
    new_run = make_run(store, new)
    fill(store, new_run.id)
    long_ago = time.time() - 100 * 86400
    execute(store, workspaces.update().where(workspaces.c.id == old)
            .values(last_seen_at=long_ago))

    assert store.purge_stale_workspaces(days=90) == 1
    assert count(store, workspaces, workspaces.c.id == old) == 0
    for r in old_runs:
        assert rows_of(store, r.id) == dict.fromkeys(rows_of(store, r.id), 0)
    assert store.dataset(data.hash) is None
    assert store.get_run(new_run.id) is not None and len(store.records(new_run.id)) == 2
    assert store.purge_stale_workspaces(days=90) == 0
    assert store.workspace_for_token("old browser") != old  # a new, empty workspace


# ---- 6. datasets ------------------------------------------------------------------------
def test_datasets_stored_once_per_content(store, ws):
    content = b"x,y,label\n" + b"0.5,1.5,a\n" * 1000
    first, second = upload(content, "a.csv"), upload(content, "renamed.csv")
    assert first.hash == second.hash
    r1 = make_run(store, ws, dataset=first)
    r2 = make_run(store, store.workspace_for_token("other"), dataset=second)
    assert r1.dataset_hash == r2.dataset_hash == first.hash
    make_run(store, ws, dataset=BUILTIN)
    make_run(store, ws, dataset=DatasetIdentity("builtin", "blobs", dict(BUILTIN.params)))
    make_run(store, ws, dataset=upload(content + b"1,1,b\n"))
    assert count(store, datasets) == 3
    assert count(store, datasets, datasets.c.hash == first.hash) == 1
    stored = store.dataset(first.hash)
    assert stored.content == content and stored.kind == "upload"
    assert store.dataset(BUILTIN.hash) == BUILTIN


# ---- 7. interrupted runs -------------------------------------------------------------------
def test_interrupt_orphans(store, ws):
    own, stale, fresh, killed, remote = (store.register_server() for _ in range(5))
    execute(store, servers.update().where(servers.c.id == stale)
            .values(heartbeat_at=time.time() - 60))
    pid = dead_pid()
    execute(store, servers.update().where(servers.c.id == killed).values(pid=pid))
    # on another host only the heartbeat counts: its pid means nothing here
    execute(store, servers.update().where(servers.c.id == remote)
            .values(pid=pid, host="another-host.invalid"))

    def run_on(server, status):
        run = make_run(store, ws, server_id=server, status=status)
        store.add_records(run.id, [rec(1), rec(2), rec(3)])
        return run.id

    mine = run_on(own, "running")
    orphan = run_on(stale, "running")
    orphan_paused = run_on(stale, "paused")
    finished = run_on(stale, "running")
    store.finish_run(finished, "done", "Done.", None, None)
    alive = run_on(fresh, "queued")
    after_sigkill = run_on(killed, "running")
    elsewhere = run_on(remote, "running")

    got = store.interrupt_orphans(own)
    assert sorted(got) == sorted([orphan, orphan_paused, after_sigkill])
    for run_id in got:
        run = store.get_run(run_id)
        assert run.status == "interrupted" and not run.active
        assert "Resume" in run.message and "epoch 3" in run.message
        assert run.finished_at is not None
    for run_id, status in ((mine, "running"), (finished, "done"), (alive, "queued"),
                           (elsewhere, "running")):
        assert store.get_run(run_id).status == status
    assert store.interrupt_orphans(own) == []


# ---- 8. concurrency ---------------------------------------------------------------------------
def test_two_processes_write_at_once(store, ws, tmp_path):
    a, b, shared = make_run(store, ws), make_run(store, ws), make_run(store, ws)
    go = tmp_path / "go"
    code = "import sys; from tests.store_util import concurrent_writer as w; w(*sys.argv[1:])"
    procs = [subprocess.Popen([sys.executable, "-c", code, store.url, own, shared.id, first,
                               str(go)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for own, first in ((a.id, "1"), (b.id, "101"))]
    time.sleep(0.3)
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "ok" and "Traceback" not in err
    assert [r.epoch for r in store.records(a.id)] == list(range(1, 301))
    assert [r.epoch for r in store.records(b.id)] == list(range(1, 301))
    assert [r.epoch for r in store.records(shared.id)] == list(range(1, 201))
    assert_same_records(store.records(shared.id), [rec(e) for e in range(1, 201)])


# ---- 9. the background writer ------------------------------------------------------------------
def test_writer_survives_a_postgres_outage(postgres_server, postgres_url):
    store = RunStore(postgres_url)
    ws = store.workspace_for_token("t")
    run = make_run(store, ws)
    writer = StoreWriter(postgres_url)
    applied: list = []
    lock = threading.Lock()

    def add(epoch):
        def write(s):
            s.add_records(run.id, [rec(epoch)])
            with lock:
                applied.append(epoch)
        return write

    def checkpoint(epoch):
        def write(s):
            s.save_checkpoint(run.id, epoch, f"state-{epoch}".encode())
            with lock:
                applied.append(f"checkpoint {epoch}")
        return write

    try:
        writer.submit(add(1))
        assert writer.flush(10) and writer.error is None
        postgres_server.stop_server()
        for epoch in range(2, 12):
            writer.submit(add(epoch))
        for epoch in (12, 13, 14):  # coalesced: only the newest checkpoint is written
            writer.submit(checkpoint(epoch), key=("checkpoint", run.id))
        wait_for(lambda: writer.error is not None, 20, "the writer to report the outage")
        assert "unavailable" in writer.error and "cannot be reached" in writer.error
        assert "Traceback" not in writer.error
        assert writer.pending == 11  # nothing dropped
        assert writer.flush(0.5) is False
        postgres_server.start_server()
        assert writer.flush(timeout=30)
        assert writer.error is None
        assert applied == [*range(1, 12), "checkpoint 14"]
        assert_same_records(store.records(run.id), [rec(e) for e in range(1, 12)])
        assert store.checkpoint(run.id) == (14, b"state-14")
    finally:
        if not postgres_server.is_running:
            postgres_server.start_server()
        writer.close(5)
        store.close()


def test_writer_reports_an_unwritable_sqlite_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    writer = StoreWriter(f"sqlite:///{blocker}/runs.sqlite3")
    try:
        writer.submit(lambda s: s.ping())
        wait_for(lambda: writer.error is not None, 5, "the writer to report the error")
        assert "unavailable" in writer.error and "Traceback" not in writer.error
        assert writer.pending == 1  # kept for a retry, not dropped
        assert writer._thread.is_alive()
    finally:
        assert writer.close(timeout=0.5) is False


# ---- 10. plain words ---------------------------------------------------------------------------
def test_unreachable_postgres_in_plain_words():
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/runs"
    store = RunStore(url, migrate=False)
    with pytest.raises(StoreUnavailableError, match="cannot be reached") as info:
        store.ping()
    assert str(info.value).startswith("The run store (PostgreSQL) is unavailable")
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        store.list_runs("ws")
    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        RunStore(url)
    store.close()


# ---- 11. the command line ---------------------------------------------------------------
def test_upgrade_command(store_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNPG_")}
    if store_url.startswith("sqlite"):
        env["NNPG_DATA_DIR"] = str(tmp_path)
        backend = "sqlite"
    else:
        env["NNPG_DATABASE_URL"] = store_url
        backend = "postgresql"
    for _ in range(2):  # the second run finds nothing to do
        result = subprocess.run([sys.executable, "-m", "playground.store", "upgrade"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{backend} store at revision {HEAD}"
    if backend == "sqlite":
        assert (tmp_path / "runs.sqlite3").exists()
    engine = sa.create_engine(store_url)
    try:
        assert revision(engine) == HEAD
    finally:
        engine.dispose()
