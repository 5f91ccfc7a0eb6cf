"""Operator settings, read from environment variables.

A teacher hosting the playground for a class caps what one server can be asked
to do with these (all optional; the README has the table):

=========================  =======================================  ===========
variable                   meaning                                  default
=========================  =======================================  ===========
``NNPG_MAX_JOBS``          training jobs running at once            usable CPUs
``NNPG_MAX_QUEUE``         jobs waiting at once (beyond: refused)   100
``NNPG_MAX_EPOCHS``        largest epoch count a run may ask for    2000
``NNPG_MAX_LAYERS``        most hidden layers                       6
``NNPG_MAX_UNITS``         most neurons in one hidden layer         256
``NNPG_MAX_PARAMS``        most weights + biases in one model       5000000
``NNPG_MAX_JOB_SECONDS``   longest estimated training time, s       3600
``NNPG_MAX_UPLOAD_MB``     largest CSV upload, MB                   5
``NNPG_MAX_SAMPLES``       most rows of an uploaded CSV             100000
``NNPG_DATA_DIR``          directory of the SQLite run store        ``data``
``NNPG_DATABASE_URL``      PostgreSQL URL (replaces SQLite)         (unset)
``NNPG_ABANDON_SECONDS``   stop a run nobody watched this long, s   120
``NNPG_CHECKPOINT_SECONDS`` seconds between stored checkpoints      5
``NNPG_MAX_PAUSE_SECONDS`` stop a run paused for longer than, s     600
``NNPG_MAX_ACTIVE_PER_USER`` runs queued or running per workspace    2
``NNPG_MAX_ACTIVE_PER_ADDRESS`` ... per client address               40
``NNPG_CLIENT_IP_HEADER``  header with the client address (proxy)   (unset)
``NNPG_CLASS_DAYS``        days a class lasts                       14
``NNPG_MAX_RUNS_PER_WORKSPACE`` runs kept per workspace             200
``NNPG_RETENTION_DAYS``    delete workspaces untouched this long    90
``NNPG_DB_WARN_MB``        warn when the database grows past, MB    2000
=========================  =======================================  ===========

"Usable CPUs" respects the process's CPU affinity and a cgroup CPU quota (a
container started with ``--cpus 2`` gets 2 even on a 64-core host).

Every value is checked when the settings are read (:func:`load_settings`), and
a wrong one stops the server with a message naming the variable: numbers are
plain decimal integers (``1_000``, ``1e3`` or ``٣`` are refused), and each
has a minimum below which some page would break or nothing could run:

* ``NNPG_MAX_LAYERS`` >= 1 and ``NNPG_MAX_UNITS`` >= 2: the Hidden layers and
  Neurons sliders need a range (a 0..0 or 1..1 slider is an error in
  Streamlit); 0 hidden layers stays selectable.
* ``NNPG_MAX_PARAMS`` >= 1000: a network without hidden layers fits every
  built-in data set (Digits: 650 weights and biases).
* ``NNPG_MAX_SAMPLES`` >= 10: an upload needs 10 rows to train and test.
* ``NNPG_ABANDON_SECONDS`` >= 5; every other count and duration >= 1.
* ``NNPG_MAX_JOBS`` <= 1024 (one worker process each) and ``NNPG_MAX_UPLOAD_MB``
  <= 1024.
* ``NNPG_MAX_ACTIVE_PER_ADDRESS`` >= ``NNPG_MAX_ACTIVE_PER_USER`` (one user
  must be able to use their share).
* ``NNPG_CLIENT_IP_HEADER`` is an HTTP header name.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "available_cpus", "cgroup_cpu_limit", "load_settings"]


def cgroup_cpu_limit(root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """CPU quota of this process's cgroup in CPUs, or ``None`` if unlimited.

    Reads cgroup v2 ``cpu.max`` ("200000 100000" = 2 CPUs, "max 100000" =
    unlimited), falling back to cgroup v1 ``cpu.cfs_quota_us`` and
    ``cpu.cfs_period_us``.
    """
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def available_cpus(root: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: affinity, capped by the cgroup quota (at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_limit(root)
    if quota is not None:
        # A fractional quota (1.5 CPUs) cannot run two single-threaded jobs at
        # full speed, so round down.
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def _int_env(name: str, default: int, minimum: int = 1, maximum: int = 10**12,
             why: str = "") -> int:
    """An integer setting in ``minimum..maximum`` (``why``: the reason for the minimum)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", raw):  # int() would take "1_000" and "٣"
        raise ValueError(f"{name} must be an integer (digits 0-9), got {raw[:40]!r}")
    value = int(raw)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}{why}, got {value}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Limits that apply to every user of this server."""

    max_jobs: int  # training jobs running at once
    max_queue: int  # jobs waiting at once
    max_epochs: int  # upper end of the Epochs slider
    max_layers: int  # upper end of the Hidden layers slider
    max_units: int  # upper end of the Neurons sliders
    max_params: int  # refuse models with more weights + biases
    max_job_seconds: int  # refuse runs estimated to take longer
    max_upload_mb: int  # refuse larger CSV files
    max_samples: int  # refuse CSV files with more rows
    data_dir: str = "data"  # the SQLite run store lives here
    database_url: str | None = None  # PostgreSQL instead of SQLite (never logged)
    abandon_seconds: int = 120  # stop a run no page has shown for this long
    max_pause_seconds: int = 600  # stop a run paused for longer than this
    max_active_per_user: int = 2  # runs queued or running per workspace
    max_active_per_address: int = 40  # ... per client address (a class may share one NAT)
    client_ip_header: str = ""  # e.g. X-Real-IP behind a reverse proxy; empty: the socket
    class_days: int = 14  # a class expires this many days after it was started
    checkpoint_seconds: int = 5  # seconds between stored checkpoints of a run
    max_runs_per_workspace: int = 200  # oldest unpinned runs beyond this are dropped
    retention_days: int = 90  # workspaces nobody opened for this long are deleted
    db_warn_mb: int = 2000  # the Compare page warns when the database is larger

    @property
    def store_url(self) -> str:
        """SQLAlchemy URL of the run store (PostgreSQL if configured, else SQLite)."""
        from .store import database_url

        return database_url(self.data_dir, self.database_url)


def load_settings() -> Settings:
    """Read :class:`Settings` from the environment and check them (see the module
    docstring); raises ``ValueError`` naming the variable that is wrong."""
    settings = Settings(
        max_jobs=_int_env("NNPG_MAX_JOBS", available_cpus(), maximum=1024),
        max_queue=_int_env("NNPG_MAX_QUEUE", 100),
        max_epochs=_int_env("NNPG_MAX_EPOCHS", 2000),
        max_layers=_int_env("NNPG_MAX_LAYERS", 6, minimum=1,
                            why=" (the Hidden layers slider needs a range, 0 to at least 1)"),
        max_units=_int_env("NNPG_MAX_UNITS", 256, minimum=2,
                           why=" (the Neurons sliders need a range, 1 to at least 2)"),
        max_params=_int_env("NNPG_MAX_PARAMS", 5_000_000, minimum=1000,
                            why=" (a network without hidden layers on Digits has 650)"),
        max_job_seconds=_int_env("NNPG_MAX_JOB_SECONDS", 3600),
        max_upload_mb=_int_env("NNPG_MAX_UPLOAD_MB", 5, maximum=1024),
        max_samples=_int_env("NNPG_MAX_SAMPLES", 100_000, minimum=10,
                             why=" (an upload needs 10 rows to train and test)"),
        data_dir=os.environ.get("NNPG_DATA_DIR", "").strip() or "data",
        database_url=_database_url_env(),
        abandon_seconds=_int_env("NNPG_ABANDON_SECONDS", 120, minimum=5),
        checkpoint_seconds=_int_env("NNPG_CHECKPOINT_SECONDS", 5),
        max_pause_seconds=_int_env("NNPG_MAX_PAUSE_SECONDS", 600),
        max_active_per_user=_int_env("NNPG_MAX_ACTIVE_PER_USER", 2),
        max_active_per_address=_int_env("NNPG_MAX_ACTIVE_PER_ADDRESS", 40),
        client_ip_header=_header_env("NNPG_CLIENT_IP_HEADER"),
        class_days=_int_env("NNPG_CLASS_DAYS", 14, maximum=365),
        max_runs_per_workspace=_int_env("NNPG_MAX_RUNS_PER_WORKSPACE", 200),
        retention_days=_int_env("NNPG_RETENTION_DAYS", 90),
        db_warn_mb=_int_env("NNPG_DB_WARN_MB", 2000),
    )
    if settings.max_active_per_address < settings.max_active_per_user:
        raise ValueError(
            f"NNPG_MAX_ACTIVE_PER_ADDRESS ({settings.max_active_per_address}) must be >= "
            f"NNPG_MAX_ACTIVE_PER_USER ({settings.max_active_per_user}): one user must be "
            "able to use their share")
    return settings


def _header_env(name: str) -> str:
    raw = os.environ.get(name, "").strip()
    if raw and not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}", raw):
        raise ValueError(f"{name} must be an HTTP header name such as X-Real-IP, got "
                         f"{raw[:40]!r}")
    return raw


def _database_url_env() -> str | None:
    raw = os.environ.get("NNPG_DATABASE_URL", "").strip()
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgresql+psycopg://", "sqlite:///")):
        # The URL may hold a password: name the variable, never echo the value.
        raise ValueError("NNPG_DATABASE_URL must start with postgresql+psycopg:// "
                         "(or sqlite:/// for a file elsewhere)")
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://"):]
    return raw
