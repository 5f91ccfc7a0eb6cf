"""The run store: every run, its curves, evaluations, checkpoints and model, in a database.

The store is the source of truth for anything a user would be upset to lose
(DESIGN.md): a reload, a dropped connection or a restarted server loses
nothing that reached it. SQLAlchemy 2 talks to one of two back ends:

* **SQLite** by default, a file ``runs.sqlite3`` in ``NNPG_DATA_DIR``: WAL
  journal (readers never wait for the writer), a busy timeout instead of
  "database is locked" errors, and write transactions that take the write lock
  up front (``BEGIN IMMEDIATE``), so two processes writing at once queue up
  instead of failing;
* **PostgreSQL** when ``NNPG_DATABASE_URL`` names one (psycopg 3): how several
  replicas behind nginx share runs.

Every process (the web server, each training worker) opens its own
:class:`RunStore`, i.e. its own connection pool. The schema is created and
upgraded by Alembic (:func:`upgrade`), at start-up and by
``python -m playground.store upgrade``.

Errors of the database itself (down, disk full, read-only file) surface as
:class:`StoreUnavailableError`, whose message says what is wrong in plain
words; callers keep working without the store where they can.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from nn_core.training import EpochRecord

from .evaluation import Evaluation
from .status import ACTIVE, Status
from .store_schema import (
    checkpoints,
    datasets,
    epoch_records,
    evaluations,
    runs,
    servers,
    weight_snapshots,
    workspaces,
)

__all__ = ["ACTIVE_STATUSES", "DatasetIdentity", "RunRow", "RunStore", "StoreUnavailableError",
           "database_url", "new_id", "upgrade"]

log = logging.getLogger("playground.store")

MIGRATIONS = Path(__file__).with_name("migrations")
#: Statuses of a run that is (or should be) on a worker or in the queue.
ACTIVE_STATUSES = tuple(sorted(ACTIVE))
#: A server whose heartbeat is older than this is taken for dead.
SERVER_TIMEOUT = 20.0
#: Seconds a writer waits for another writer's lock before giving up.
BUSY_TIMEOUT = 10.0


class StoreUnavailableError(RuntimeError):
    """The database cannot be read or written right now; the message says why."""


def new_id(nbytes: int = 12) -> str:
    """An unguessable id (96 bits by default), safe in URLs."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def database_url(data_dir: str | os.PathLike | None = None, url: str | None = None) -> str:
    """The store's SQLAlchemy URL: ``url`` if given, else SQLite in ``data_dir``."""
    if url:
        return url
    path = Path(data_dir or "data").resolve()
    return f"sqlite:///{path / 'runs.sqlite3'}"


def _plain_words(exc: BaseException, url: str) -> str:
    """What a database error means for the user, without a traceback."""
    text = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:300]
    low = text.lower()
    if "readonly" in low or "read-only" in low or "permission" in low:
        why = "the database file is not writable"
    elif ("disk" in low and ("full" in low or "i/o" in low)) or "no space" in low:
        why = "the disk is full"
    elif "locked" in low or "busy" in low:
        why = "the database is busy"
    elif "unable to open" in low:
        why = "the database file cannot be opened"
    elif "connect" in low or "server" in low or "terminat" in low or "closed" in low:
        why = "the database server cannot be reached"
    else:
        why = "the database reported an error"
    where = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    return f"The run store ({where}) is unavailable: {why} ({text})."


# ---- engine -------------------------------------------------------------------
def make_engine(url: str) -> Engine:
    """One engine (connection pool) for this process, tuned per back end."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailableError(
                    f"The run store (SQLite) is unavailable: its directory {Path(path).parent} "
                    f"cannot be created ({exc.strerror}).") from exc
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT},
                                  pool_pre_ping=False)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, issue BEGIN: transactional
            # DDL (a failed migration rolls back) and BEGIN IMMEDIATE for writers.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL-safe
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5,
                            connect_args={"connect_timeout": 5})


def upgrade(engine: Engine, script_location: str | os.PathLike = MIGRATIONS,
            revision: str = "head") -> str | None:
    """Apply Alembic migrations up to ``revision``; return the revision now in force.

    Each migration is its own transaction: one that fails is rolled back and
    leaves the previous schema usable. Replicas starting together are
    serialised (an advisory lock on PostgreSQL, the write lock on SQLite).
    """
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_lock(7304171)")
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.rollback()
                conn.exec_driver_sql("SELECT pg_advisory_unlock(7304171)")
                conn.commit()
        return MigrationContext.configure(conn).get_current_revision()


# ---- values -------------------------------------------------------------------
@dataclass(frozen=True)
class DatasetIdentity:
    """Which data a run trained on: a built-in generator's parameters or an upload's bytes."""

    kind: str  # "builtin" | "upload"
    name: str
    params: dict[str, Any]
    content: bytes | None = None

    @property
    def hash(self) -> str:
        if self.content is not None:
            return hashlib.sha256(self.content).hexdigest()
        text = json.dumps({"name": self.name, **self.params}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RunRow:
    """A run's metadata as stored (no curves, no model bytes)."""

    id: str
    workspace_id: str
    group_id: str | None
    number: int
    name: str
    notes: str
    pinned: bool
    config: dict[str, Any]
    dataset_hash: str
    classes: tuple
    n_params: int
    batch_size: int
    epochs_planned: int
    epochs_done: int
    status: str
    message: str
    server_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    watched_at: float | None
    train_seconds: float | None
    train_loss: float | None
    val_loss: float | None
    test_accuracy: float | None
    macro_f1: float | None
    has_model: bool
    class_id: str | None = None  # the class it was trained in (classroom)
    lesson_step: int | None = None  # the lesson step it was trained for

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


_RUN_COLUMNS = [c for c in runs.c if c.name != "model"]


def _run_row(row: sa.Row) -> RunRow:
    m = row._mapping
    values = {c.name: m[c.name] for c in _RUN_COLUMNS}
    values["classes"] = tuple(values["classes"])
    values["pinned"] = bool(values["pinned"])
    return RunRow(**values, has_model=bool(m["has_model"]))


def _record_row(run_id: str, r: EpochRecord) -> dict[str, Any]:
    return {"run_id": run_id, "epoch": r.epoch, "train_loss": _finite(r.train_loss),
            "train_accuracy": r.train_accuracy, "val_loss": _finite(r.val_loss),
            "val_accuracy": r.val_accuracy, "learning_rate": r.learning_rate,
            "elapsed": r.elapsed, "epoch_seconds": r.epoch_seconds,
            "samples_per_second": r.samples_per_second,
            "norms": {"weight": [_finite(v) for v in r.weight_norms],
                      "grad": [_finite(v) for v in r.grad_norms]}}


def _finite(value: float | None) -> float | None:
    """NaN and infinities as NULL (PostgreSQL JSON has no NaN; SQLite REAL turns NaN to NULL)."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _record(m: Any) -> EpochRecord:
    nan = float("nan")
    norms = m["norms"]
    return EpochRecord(
        epoch=m["epoch"], train_loss=nan if m["train_loss"] is None else m["train_loss"],
        train_accuracy=m["train_accuracy"], val_loss=m["val_loss"],
        val_accuracy=m["val_accuracy"], learning_rate=m["learning_rate"],
        elapsed=m["elapsed"], epoch_seconds=m["epoch_seconds"],
        samples_per_second=m["samples_per_second"],
        weight_norms=tuple(nan if v is None else v for v in norms["weight"]),
        grad_norms=tuple(nan if v is None else v for v in norms["grad"]))


def _scores(evaluation: Evaluation) -> dict[str, float | None]:
    return {"test_accuracy": _finite(evaluation.accuracy),
            "macro_f1": _finite(evaluation.macro_f1)}


# ---- the store ------------------------------------------------------------------
class RunStore:
    """Runs, workspaces and their data in one database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL (see :func:`database_url`).
    migrate : bool
        Apply pending migrations now (the web server does; workers do not).
    """

    def __init__(self, url: str, migrate: bool = True) -> None:
        self.url = url
        self.backend = "sqlite" if url.startswith("sqlite") else "postgresql"
        self.engine = make_engine(url)
        self._writer = self.engine.execution_options(immediate=True)
        self.revision: str | None = None
        if migrate:
            try:
                self.revision = upgrade(self.engine)
            except sa.exc.SQLAlchemyError as exc:
                raise StoreUnavailableError(_plain_words(exc, url)) from exc
            except Exception as exc:  # a migration script failed
                raise StoreUnavailableError(
                    f"The run store's schema could not be upgraded: {type(exc).__name__}: "
                    f"{exc}. The previous schema was kept.") from exc

    def __repr__(self) -> str:
        return f"RunStore({self.backend}, revision={self.revision!r})"

    def close(self) -> None:
        self.engine.dispose()

    # ---- plumbing ------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (takes SQLite's write lock up front)."""
        with self._unavailable_as_error(), self._writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._unavailable_as_error(), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        """Database outages as :class:`StoreUnavailableError`; other errors unchanged."""
        try:
            yield
        except sa.exc.OperationalError as exc:
            raise StoreUnavailableError(_plain_words(exc, self.url)) from exc
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailableError(_plain_words(exc, self.url)) from exc
            raise

    def _insert(self, table: sa.Table) -> Any:
        """INSERT ... ON CONFLICT DO NOTHING in this back end's dialect."""
        if self.backend == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(table)

    def _upsert(self, conn: Connection, table: sa.Table, keys: Sequence[str],
                values: dict[str, Any]) -> None:
        stmt = self._insert(table).values(**values)
        update = {k: stmt.excluded[k] for k in values if k not in keys}
        conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=update))

    def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the database answers."""
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))

    # ---- workspaces ---------------------------------------------------------------
    def workspace_for_token(self, token: str) -> str:
        """The workspace id of a browser's secret token (created on first use)."""
        h = token_hash(token)
        now = time.time()
        with self._read() as conn:
            row = conn.execute(sa.select(workspaces.c.id, workspaces.c.last_seen_at)
                               .where(workspaces.c.token_hash == h)).first()
        if row is not None:
            if now - row.last_seen_at > 3600:  # one write an hour is enough for retention
                with self._write() as conn:
                    conn.execute(workspaces.update().where(workspaces.c.id == row.id)
                                 .values(last_seen_at=now))
            return row.id
        with self._write() as conn:
            conn.execute(self._insert(workspaces).values(
                id=new_id(9), token_hash=h, created_at=now, last_seen_at=now
            ).on_conflict_do_nothing(index_elements=["token_hash"]))
            return conn.execute(sa.select(workspaces.c.id)
                                .where(workspaces.c.token_hash == h)).scalar_one()

    # ---- runs -------------------------------------------------------------------------
    def create_run(self, workspace_id: str, *, config: dict[str, Any],
                   dataset: DatasetIdentity, classes: Sequence, n_params: int, batch_size: int,
                   epochs_planned: int, server_id: str | None, status: str = Status.QUEUED,
                   message: str = "Waiting for a free worker.", class_id: str | None = None,
                   lesson_step: int | None = None) -> RunRow:
        """Store a new run (and its data set, once per content) and return it."""
        for attempt in range(5):
            try:
                return self._create_run(workspace_id, config, dataset, classes, n_params,
                                        batch_size, epochs_planned, server_id, status, message,
                                        class_id, lesson_step)
            except sa.exc.IntegrityError:
                # Another replica numbered a run of this workspace at the same moment.
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _create_run(self, workspace_id: str, config: dict[str, Any], dataset: DatasetIdentity,
                    classes: Sequence, n_params: int, batch_size: int, epochs_planned: int,
                    server_id: str | None, status: str, message: str,
                    class_id: str | None = None, lesson_step: int | None = None) -> RunRow:
        now = time.time()
        run_id = new_id()
        with self._write() as conn:
            conn.execute(self._insert(datasets).values(
                hash=dataset.hash, kind=dataset.kind, name=dataset.name[:200],
                params=dataset.params, content=dataset.content,
                size=len(dataset.content or b""), created_at=now
            ).on_conflict_do_nothing(index_elements=["hash"]))
            number = conn.execute(sa.select(sa.func.coalesce(sa.func.max(runs.c.number), 0))
                                  .where(runs.c.workspace_id == workspace_id)).scalar_one() + 1
            conn.execute(runs.insert().values(
                id=run_id, workspace_id=workspace_id, number=number, name=f"Run {number}",
                notes="", pinned=False, config=config, dataset_hash=dataset.hash,
                classes=[_plain(c) for c in classes], n_params=int(n_params),
                batch_size=int(batch_size), epochs_planned=int(epochs_planned), epochs_done=0,
                status=status, message=message, server_id=server_id, created_at=now,
                updated_at=now, watched_at=now, class_id=class_id, lesson_step=lesson_step))
        run = self.get_run(run_id)
        assert run is not None
        return run

    def get_run(self, run_id: str) -> RunRow | None:
        with self._read() as conn:
            row = conn.execute(sa.select(*_RUN_COLUMNS,
                                         runs.c.model.is_not(None).label("has_model"))
                               .where(runs.c.id == run_id)).first()
        return None if row is None else _run_row(row)

    def list_runs(self, workspace_id: str, offset: int = 0, limit: int = 20
                  ) -> tuple[list[RunRow], int]:
        """One page of a workspace's runs, newest first, and how many there are."""
        limit = max(1, min(int(limit), 200))
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(runs)
                                 .where(runs.c.workspace_id == workspace_id)).scalar_one()
            rows = conn.execute(
                sa.select(*_RUN_COLUMNS, runs.c.model.is_not(None).label("has_model"))
                .where(runs.c.workspace_id == workspace_id)
                .order_by(runs.c.created_at.desc(), runs.c.number.desc())
                .offset(max(0, int(offset))).limit(limit)).all()
        return [_run_row(r) for r in rows], total

    def latest_active_run(self, workspace_id: str) -> RunRow | None:
        """The workspace's newest run that is queued, running or paused."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(*_RUN_COLUMNS, runs.c.model.is_not(None).label("has_model"))
                .where(runs.c.workspace_id == workspace_id,
                       runs.c.status.in_(ACTIVE_STATUSES))
                .order_by(runs.c.created_at.desc()).limit(1)).first()
        return None if row is None else _run_row(row)

    def update_run(self, run_id: str, workspace_id: str | None = None, **values: Any) -> bool:
        """Change a run's fields (rename, notes, pin, status...). False if not found.

        With ``workspace_id``, only a run of that workspace is changed.
        """
        allowed = {"name", "notes", "pinned", "status", "message", "server_id", "started_at",
                   "finished_at", "watched_at", "epochs_done", "train_seconds"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        if "name" in values:
            values["name"] = str(values["name"]).strip()[:200] or "Untitled run"
        if "notes" in values:
            values["notes"] = str(values["notes"])[:5000]
        stmt = runs.update().where(runs.c.id == run_id)
        if workspace_id is not None:
            stmt = stmt.where(runs.c.workspace_id == workspace_id)
        with self._write() as conn:
            return conn.execute(stmt.values(**values, updated_at=time.time())).rowcount > 0

    def set_status(self, run_id: str, status: str, message: str, *,
                   only_if: Sequence[str] | None = None, **values: Any) -> bool:
        """Move a run to ``status``; with ``only_if``, only from one of those statuses."""
        stmt = runs.update().where(runs.c.id == run_id)
        if only_if is not None:
            stmt = stmt.where(runs.c.status.in_(list(only_if)))
        with self._write() as conn:
            return conn.execute(stmt.values(status=status, message=message,
                                            updated_at=time.time(), **values)).rowcount > 0

    def delete_runs(self, workspace_id: str, run_ids: Sequence[str]) -> int:
        """Delete runs of a workspace for good: rows, curves, checkpoints, model bytes."""
        if not run_ids:
            return 0
        with self._write() as conn:
            ids = conn.execute(sa.select(runs.c.id).where(
                runs.c.workspace_id == workspace_id, runs.c.id.in_(list(run_ids)))
            ).scalars().all()
            self._delete_ids(conn, ids)
        return len(ids)

    def _delete_ids(self, conn: Connection, ids: Sequence[str]) -> None:
        if not ids:
            return
        # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with
        # foreign keys on, and a database opened by another tool may have them off.
        for table in (epoch_records, evaluations, checkpoints, weight_snapshots):
            conn.execute(table.delete().where(table.c.run_id.in_(ids)))
        hashes = conn.execute(sa.select(runs.c.dataset_hash).where(runs.c.id.in_(ids))
                              .distinct()).scalars().all()
        conn.execute(runs.delete().where(runs.c.id.in_(ids)))
        # An uploaded file goes with the last run that used it.
        used = sa.select(runs.c.id).where(runs.c.dataset_hash == datasets.c.hash).exists()
        conn.execute(datasets.delete().where(datasets.c.hash.in_(hashes), ~used))

    def enforce_run_limit(self, workspace_id: str, max_runs: int) -> list[str]:
        """Drop the oldest unpinned finished runs beyond ``max_runs``; return their names."""
        with self._write() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(runs)
                                 .where(runs.c.workspace_id == workspace_id)).scalar_one()
            excess = total - max_runs
            if excess <= 0:
                return []
            doomed = conn.execute(
                sa.select(runs.c.id, runs.c.name)
                .where(runs.c.workspace_id == workspace_id, ~runs.c.pinned,
                       runs.c.status.not_in(ACTIVE_STATUSES))
                .order_by(runs.c.created_at).limit(excess)).all()
            self._delete_ids(conn, [r.id for r in doomed])
        return [r.name for r in doomed]

    def purge_stale_workspaces(self, days: float) -> int:
        """Delete workspaces nobody opened for ``days`` days, with all their runs."""
        cutoff = time.time() - days * 86400
        with self._write() as conn:
            stale = conn.execute(sa.select(workspaces.c.id)
                                 .where(workspaces.c.last_seen_at < cutoff)).scalars().all()
            for ws in stale:
                ids = conn.execute(sa.select(runs.c.id).where(runs.c.workspace_id == ws)
                                   ).scalars().all()
                self._delete_ids(conn, ids)
                conn.execute(workspaces.delete().where(workspaces.c.id == ws))
        return len(stale)

    def size_bytes(self) -> int | None:
        """Size of the database (None if the back end does not say)."""
        with self._read() as conn:
            if self.backend == "sqlite":
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
                return int(pages) * int(size)
            return int(conn.exec_driver_sql(
                "SELECT pg_database_size(current_database())").scalar_one())

    # ---- curves, evaluations, checkpoints, model -------------------------------------
    def add_records(self, run_id: str, records: Sequence[EpochRecord],
                    evaluation: Evaluation | None = None) -> None:
        """Append epoch records (one batch, one transaction) and the latest evaluation."""
        if not records and evaluation is None:
            return
        now = time.time()
        with self._write() as conn:
            if records:
                conn.execute(self._insert(epoch_records).on_conflict_do_nothing(
                    index_elements=["run_id", "epoch"]),
                    [_record_row(run_id, r) for r in records])
                last = records[-1]
                conn.execute(runs.update().where(runs.c.id == run_id).values(
                    epochs_done=last.epoch, train_seconds=last.elapsed, updated_at=now,
                    train_loss=_finite(last.train_loss), val_loss=_finite(last.val_loss)))
            if evaluation is not None:
                conn.execute(runs.update().where(runs.c.id == run_id).values(
                    **_scores(evaluation), updated_at=now))
                self._upsert(conn, evaluations, ("run_id", "kind"), {
                    "run_id": run_id, "kind": "latest", "epoch": evaluation.epoch,
                    "data": evaluation.to_bytes()})

    def records(self, run_id: str, after_epoch: int = 0) -> list[EpochRecord]:
        """The run's epoch records after ``after_epoch``, in order."""
        with self._read() as conn:
            rows = conn.execute(sa.select(epoch_records)
                                .where(epoch_records.c.run_id == run_id,
                                       epoch_records.c.epoch > after_epoch)
                                .order_by(epoch_records.c.epoch)).all()
        return [_record(r._mapping) for r in rows]

    def truncate_records(self, run_id: str, after_epoch: int) -> None:
        """Forget epochs after ``after_epoch`` (a resumed run trains them again)."""
        with self._write() as conn:
            conn.execute(epoch_records.delete().where(epoch_records.c.run_id == run_id,
                                                      epoch_records.c.epoch > after_epoch))
            # Evaluations of the forgotten epochs describe weights the run no longer has.
            conn.execute(evaluations.delete().where(evaluations.c.run_id == run_id,
                                                    evaluations.c.epoch > after_epoch))
            conn.execute(runs.update().where(runs.c.id == run_id).values(
                epochs_done=sa.func.min(runs.c.epochs_done, after_epoch)
                if self.backend == "sqlite" else sa.func.least(runs.c.epochs_done, after_epoch),
                updated_at=time.time()))

    def evaluation(self, run_id: str) -> Evaluation | None:
        """The final evaluation if there is one, else the latest."""
        with self._read() as conn:
            rows = {r.kind: r.data for r in conn.execute(
                sa.select(evaluations.c.kind, evaluations.c.data)
                .where(evaluations.c.run_id == run_id))}
        data = rows.get("final") or rows.get("latest")
        return None if data is None else Evaluation.from_bytes(data)

    def save_checkpoint(self, run_id: str, epoch: int, data: bytes) -> None:
        with self._write() as conn:
            self._upsert(conn, checkpoints, ("run_id",), {
                "run_id": run_id, "epoch": int(epoch), "created_at": time.time(),
                "data": data})

    def checkpoint(self, run_id: str) -> tuple[int, bytes] | None:
        """The run's newest checkpoint as ``(epoch, bytes)``."""
        with self._read() as conn:
            row = conn.execute(sa.select(checkpoints.c.epoch, checkpoints.c.data)
                               .where(checkpoints.c.run_id == run_id)).first()
        return None if row is None else (row.epoch, row.data)

    def finish_run(self, run_id: str, status: str, message: str,
                   evaluation: Evaluation | None, model: bytes | None) -> None:
        """Store a run's outcome: status, final evaluation and model, in one transaction."""
        now = time.time()
        with self._write() as conn:
            if evaluation is not None:
                self._upsert(conn, evaluations, ("run_id", "kind"), {
                    "run_id": run_id, "kind": "final", "epoch": evaluation.epoch,
                    "data": evaluation.to_bytes()})
            scores = _scores(evaluation) if evaluation is not None else {}
            conn.execute(runs.update().where(runs.c.id == run_id).values(
                status=status, message=message, finished_at=now, updated_at=now,
                model=model, **scores))

    def model(self, run_id: str) -> bytes | None:
        with self._read() as conn:
            return conn.execute(sa.select(runs.c.model).where(runs.c.id == run_id)
                                ).scalar_one_or_none()

    def dataset(self, data_hash: str) -> DatasetIdentity | None:
        with self._read() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.hash == data_hash)).first()
        if row is None:
            return None
        return DatasetIdentity(row.kind, row.name, dict(row.params), row.content)

    # ---- servers and interrupted runs -----------------------------------------------------
    def register_server(self) -> str:
        """Record this process as a server that runs jobs; return its id."""
        server_id = new_id(9)
        now = time.time()
        with self._write() as conn:
            conn.execute(servers.insert().values(id=server_id, host=socket.gethostname(),
                                                 pid=os.getpid(), started_at=now,
                                                 heartbeat_at=now))
        return server_id

    def heartbeat(self, server_id: str) -> None:
        with self._write() as conn:
            conn.execute(servers.update().where(servers.c.id == server_id)
                         .values(heartbeat_at=time.time()))

    def watched(self, run_ids: Sequence[str]) -> dict[str, float]:
        """When each run was last shown live (by any replica)."""
        if not run_ids:
            return {}
        with self._read() as conn:
            return {r.id: r.watched_at or 0.0 for r in conn.execute(
                sa.select(runs.c.id, runs.c.watched_at).where(runs.c.id.in_(list(run_ids))))}

    def interrupt_orphans(self, own_server_id: str | None = None) -> list[str]:
        """Mark active runs of dead servers as interrupted; return their ids.

        A server is dead when its heartbeat is older than :data:`SERVER_TIMEOUT`,
        or at once when it ran on this host and its process is gone (a restart
        after SIGKILL).
        """
        now = time.time()
        host = socket.gethostname()
        with self._read() as conn:
            rows = conn.execute(
                sa.select(runs.c.id, runs.c.server_id, runs.c.epochs_done, servers.c.host,
                          servers.c.pid, servers.c.heartbeat_at)
                .select_from(runs.outerjoin(servers, runs.c.server_id == servers.c.id))
                .where(runs.c.status.in_(ACTIVE_STATUSES))).all()
        dead = []
        for r in rows:
            if own_server_id is not None and r.server_id == own_server_id:
                continue
            gone = (r.heartbeat_at is None or now - r.heartbeat_at > SERVER_TIMEOUT
                    or (r.host == host and not _pid_alive(r.pid)))
            if gone:
                dead.append(r)
        for r in dead:
            self.set_status(r.id, Status.INTERRUPTED, interrupted_message(r.epochs_done),
                            only_if=ACTIVE_STATUSES, finished_at=now)
        return [r.id for r in dead]


def interrupted_message(epoch: int) -> str:
    return (f"Interrupted after epoch {epoch}: the server stopped during this run. "
            "Press Resume to continue from its last checkpoint.")


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped) is as dead as it gets for us.
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _plain(value: Any) -> Any:
    """A class label as a JSON value (NumPy scalars to Python)."""
    return value.item() if isinstance(value, np.generic) else value


def main(argv: list[str] | None = None) -> int:
    """``python -m playground.store upgrade|current``: migrate or show the schema revision."""
    from .settings import load_settings

    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "upgrade"
    if command not in ("upgrade", "current"):
        print("usage: python -m playground.store [upgrade|current]", file=sys.stderr)
        return 2
    settings = load_settings()
    url = database_url(settings.data_dir, settings.database_url)
    try:
        store = RunStore(url, migrate=command == "upgrade")
    except StoreUnavailableError as exc:
        print(exc, file=sys.stderr)
        return 1
    from alembic.runtime.migration import MigrationContext
    with store.engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
    print(f"{store.backend} store at revision {revision}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
