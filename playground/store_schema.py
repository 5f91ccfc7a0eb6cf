"""The run store's tables (SQLAlchemy Core), one place for the schema.

The migrations in ``playground/migrations/versions`` create exactly these
tables; ``tests/test_store.py`` checks that the migrated database and this
metadata agree, so the two cannot drift apart.

What a row holds and why:

``workspaces``
    A browser's account-less workspace. Only a SHA-256 of its secret token is
    stored: a copy of the database does not hand out workspaces.
``datasets``
    A data set's identity, stored once per content hash: built-in sets by name
    and generator parameters (``content`` empty: they are regenerated), uploads
    with their bytes (bounded by the upload limit).
``run_groups``
    Runs that belong together (several seeds, a sweep). Not used by the pages
    yet; here so that grouping needs no migration of ``runs``.
``runs``
    One training run: configuration, status, timings, owner, the final model.
``epoch_records``
    One row per trained epoch (the curves), written in batches by the worker.
``evaluations``
    The latest and the final test-set evaluation of a run (``kind``).
``checkpoints``
    The newest resumable training state of a run (weights, optimiser,
    schedule and random-generator state).
``weight_snapshots``
    Weights at chosen epochs, for a training timeline to scrub through.
``servers``
    Every app process that ran jobs, with a heartbeat: a run whose server
    stopped beating was interrupted.
``classes``
    A class: its short join code, the SHA-256 of the teacher's secret token,
    the lesson it follows (the validated lesson document), expiry and end.
``class_members``
    A workspace that joined a class, under a display name unique in the class,
    and the lesson step it has reached. ``runs.class_id`` ties a run to the
    class it was trained in (set to NULL when the class ends: detached, kept).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["METADATA", "checkpoints", "class_members", "classes", "datasets", "epoch_records",
           "evaluations", "run_groups", "runs", "servers", "weight_snapshots", "workspaces"]

METADATA = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

#: Unix time in seconds (float): the same type on SQLite and PostgreSQL, no time zones.
Time = sa.Float

workspaces = sa.Table(
    "workspaces", METADATA,
    sa.Column("id", sa.String(32), primary_key=True),  # public id (never the token)
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("last_seen_at", Time, nullable=False, index=True),
)

datasets = sa.Table(
    "datasets", METADATA,
    sa.Column("hash", sa.String(64), primary_key=True),  # SHA-256 of the identity or bytes
    sa.Column("kind", sa.String(16), nullable=False),  # "builtin" | "upload"
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),  # generator parameters / file name
    sa.Column("content", sa.LargeBinary, nullable=True),  # upload bytes
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

run_groups = sa.Table(
    "run_groups", METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("workspace_id", sa.String(32),
              sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "seeds" | "sweep"
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

runs = sa.Table(
    "runs", METADATA,
    sa.Column("id", sa.String(32), primary_key=True),  # unguessable: it is the result link
    sa.Column("workspace_id", sa.String(32),
              sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    sa.Column("group_id", sa.String(32),
              sa.ForeignKey("run_groups.id", ondelete="SET NULL"), nullable=True),
    sa.Column("number", sa.Integer, nullable=False),  # "Run 7" within the workspace
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("notes", sa.Text, nullable=False, default=""),
    sa.Column("pinned", sa.Boolean, nullable=False, default=False),
    sa.Column("config", sa.JSON, nullable=False),  # RunConfig.to_dict()
    sa.Column("dataset_hash", sa.String(64), sa.ForeignKey("datasets.hash"), nullable=False),
    sa.Column("classes", sa.JSON, nullable=False),  # label of each class index
    sa.Column("n_params", sa.Integer, nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("epochs_planned", sa.Integer, nullable=False),
    sa.Column("epochs_done", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("server_id", sa.String(32), nullable=True),  # the process that trains it
    sa.Column("created_at", Time, nullable=False),
    sa.Column("started_at", Time, nullable=True),
    sa.Column("finished_at", Time, nullable=True),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("watched_at", Time, nullable=True),  # last time a page showed it live
    sa.Column("train_seconds", sa.Float, nullable=True),
    # latest scores, for lists and leaderboards without reading curves or evaluations
    sa.Column("train_loss", sa.Float, nullable=True),
    sa.Column("val_loss", sa.Float, nullable=True),
    sa.Column("test_accuracy", sa.Float, nullable=True),
    sa.Column("macro_f1", sa.Float, nullable=True),
    sa.Column("model", sa.LargeBinary, nullable=True),  # final model, nn_core .npz bytes
    # The class it was trained in. No foreign key: SQLite cannot add one to an
    # existing table without copying it; ending a class sets this to NULL itself.
    sa.Column("class_id", sa.String(32), nullable=True, index=True),
    sa.Column("lesson_step", sa.Integer, nullable=True),  # the step it was trained for
    sa.Index("ix_runs_workspace_created", "workspace_id", "created_at"),
    sa.UniqueConstraint("workspace_id", "number", name="uq_runs_workspace_number"),
    sa.Index("ix_runs_status", "status"),
)

epoch_records = sa.Table(
    "epoch_records", METADATA,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("train_loss", sa.Float, nullable=True),  # NULL: not finite
    sa.Column("train_accuracy", sa.Float, nullable=False),
    sa.Column("val_loss", sa.Float, nullable=True),
    sa.Column("val_accuracy", sa.Float, nullable=True),
    sa.Column("learning_rate", sa.Float, nullable=False),
    sa.Column("elapsed", sa.Float, nullable=False),
    sa.Column("epoch_seconds", sa.Float, nullable=False),
    sa.Column("samples_per_second", sa.Float, nullable=False),
    sa.Column("norms", sa.JSON, nullable=False),  # {"weight": [...], "grad": [...]}
)

evaluations = sa.Table(
    "evaluations", METADATA,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),  # "latest" | "final"
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # Evaluation.to_bytes (.npz, no pickle)
)

checkpoints = sa.Table(
    "checkpoints", METADATA,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # nn_core.checkpoint bytes
)

weight_snapshots = sa.Table(
    "weight_snapshots", METADATA,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),  # nn_core .npz bytes
)

servers = sa.Table(
    "servers", METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", Time, nullable=False),
    sa.Column("heartbeat_at", Time, nullable=False),
)

classes = sa.Table(
    "classes", METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("code", sa.String(12), nullable=False, unique=True),  # read aloud, typed in
    sa.Column("teacher_token_hash", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("lesson", sa.JSON, nullable=True),  # the lesson document (validated)
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("ended_at", Time, nullable=True),
)

class_members = sa.Table(
    "class_members", METADATA,
    sa.Column("class_id", sa.String(32), sa.ForeignKey("classes.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("workspace_id", sa.String(32),
              sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("display_name", sa.String(40), nullable=False),
    sa.Column("name_key", sa.String(40), nullable=False),  # casefolded: unique per class
    sa.Column("step", sa.Integer, nullable=False, default=0),  # lesson step reached
    sa.Column("joined_at", Time, nullable=False),
    sa.Column("left_at", Time, nullable=True),
    sa.UniqueConstraint("class_id", "name_key", name="uq_class_members_name"),
)
