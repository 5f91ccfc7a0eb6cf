"""A throw-away PostgreSQL cluster for tests (recipe: shared/TESTING.md).

:func:`start_postgres` runs Debian's ``initdb`` (trust authentication) in a new
directory under /tmp and starts the server with ``pg_ctl`` on a free port of
127.0.0.1, its Unix socket in that directory too. PostgreSQL refuses to run as
root, so when the tests run as root (CI) every PostgreSQL program runs as the
``postgres`` OS user, which owns the directory; otherwise they run as the
current user. Nothing touches the machine's own clusters or port 5432.

    pg = start_postgres()
    engine = sqlalchemy.create_engine(pg.create_database("runs"))
    pg.stop_server(); ...; pg.start_server()   # "the database is down / restarting"
    pg.stop()                                  # server stopped, directory removed

The server survives ``stop_server``/``start_server``/``restart`` on the same
port, so URLs handed out before stay valid. Settings trade durability for speed
(``fsync=off``): a fast or immediate shutdown is safe, a power cut is not.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

__all__ = ["PostgresServer", "find_bin_dir", "start_postgres"]

#: The OS user that runs PostgreSQL when the tests run as root.
PG_OS_USER = "postgres"
#: The database superuser initdb creates (trust authentication: no password).
SUPERUSER = "postgres"
START_TIMEOUT = 30.0


def find_bin_dir() -> Path:
    """Newest ``/usr/lib/postgresql/<version>/bin`` that has the server programs."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "pg_ctl").exists() and (d / "postgres").exists()]
    if not found:
        raise RuntimeError(
            "PostgreSQL server programs not found (/usr/lib/postgresql/*/bin/initdb): "
            "run `make test`, which installs Debian's postgresql (make system-deps)")

    def version(d: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", d.parent.name)) or (0,)

    return max(found, key=version)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One throw-away cluster: its directory, port and server process.

    ``url`` is the SQLAlchemy URL of the ``postgres`` database;
    :meth:`create_database` returns the URL of a new, empty one.
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_bin_dir()
        self.host = "127.0.0.1"
        self.port = 0
        self._stopped = False
        self._as_user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(PG_OS_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root and there is no {PG_OS_USER!r} OS user to run "
                    "PostgreSQL as: run `make test` (installs Debian's postgresql)") from None
            self._as_user = PG_OS_USER
        # /tmp (not pytest's tmp_path under /root): the postgres user must be able
        # to traverse every parent directory. mkdtemp makes it 0700.
        self.base_dir = Path(tempfile.mkdtemp(prefix="nnpg-pg-", dir="/tmp"))
        if self._as_user:
            shutil.chown(self.base_dir, user=self._as_user, group=self._as_user)
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self.is_running else "down")
        return f"PostgresServer({self.host}:{self.port}, {self.base_dir}, {state})"

    # ---- URLs ------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """SQLAlchemy (psycopg 3) URL of ``database`` on this server."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """libpq URI of ``database`` for psycopg.connect (no SQLAlchemy)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    # ---- databases -------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create the empty database ``name``; return its SQLAlchemy URL."""
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, ending the sessions still connected to it."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))

    def _admin(self) -> psycopg.Connection:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        return psycopg.connect(self.conninfo(), autocommit=True, connect_timeout=5)

    # ---- the server process ----------------------------------------------

    def init(self) -> None:
        """initdb: UTF-8, C locale (same sort order everywhere), trust authentication."""
        self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")

    def start_server(self) -> None:
        """Start the server (on the same port as before, if it ran before) and wait
        until it accepts connections."""
        if self._stopped:
            raise RuntimeError(f"{self!r} was removed by stop(); start a new one")
        if self.port:  # a restart: the port is part of the URLs handed out
            self._pg_ctl_start()
        else:
            for _attempt in range(5):
                self.port = _free_port()
                log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
                try:
                    self._pg_ctl_start()
                    break
                except RuntimeError:
                    # Another process took the port between _free_port and the start?
                    if "could not bind" not in self.log_tail(start=log_start):
                        raise
            else:
                raise RuntimeError(f"PostgreSQL found no free port\n{self.log_tail()}")
        self.wait_ready()

    def _pg_ctl_start(self) -> None:
        options = " ".join([
            f"-p {self.port}", f"-k {self.base_dir}", f"-c listen_addresses={self.host}",
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
        ])
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                  "-t", str(int(START_TIMEOUT)), "-o", options, "start")

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data. ``mode``: ``fast`` (end sessions,
        clean shut-down) or ``immediate`` (like a crash; recovery on next start)."""
        if not self.is_running:
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop (fast) and start again on the same port."""
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        """Stop the server for good and delete its directory. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.data_dir.exists():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w",
                              "stop", check=False)
                pid = self.postmaster_pid()
                if pid is not None:  # pg_ctl failed: kill what is left
                    self._kill_tree(pid)
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    @staticmethod
    def _kill_tree(pid: int) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(signal.SIGKILL)
            psutil.wait_procs(procs, timeout=5)

    def postmaster_pid(self) -> int | None:
        """PID of the running postmaster (first line of postmaster.pid), or None."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def processes(self) -> list[psutil.Process]:
        """The postmaster and its children (checkpointer, walwriter, backends...)."""
        pid = self.postmaster_pid()
        if pid is None:
            return []
        try:
            proc = psutil.Process(pid)
            return [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    @property
    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def accepts_connections(self, timeout: float = 2.0) -> bool:
        try:
            with psycopg.connect(self.conninfo(), connect_timeout=max(1, int(timeout))) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until a TCP connection to the ``postgres`` database succeeds."""
        deadline = time.monotonic() + timeout
        while not self.accepts_connections():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} does not accept "
                                   f"connections after {timeout} s\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, chars: int = 3000, start: int = 0) -> str:
        """The end of the server log (from byte ``start`` on)."""
        try:
            with self.log_file.open("rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    # ---- running the PostgreSQL programs ----------------------------------

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        """Run ``bin_dir/program args`` as the PostgreSQL OS user, in the cluster's
        directory, with a clean environment (no PG* variables of the caller)."""
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C",
               "HOME": str(self.base_dir), "TZ": "UTC"}
        user = {}
        if self._as_user:
            # subprocess switches uid/gid (and drops root's groups) in the child:
            # no shell, so no quoting of the -o options for su.
            user = {"user": self._as_user, "group": self._as_user, "extra_groups": []}
        result = subprocess.run([str(self.bin_dir / program), *args], cwd=self.base_dir,
                                env=env, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL, **user)
        if check and result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}\n{self.log_tail()}")


def start_postgres(bin_dir: Path | None = None) -> PostgresServer:
    """Create and start a throw-away cluster; :meth:`PostgresServer.stop` removes it
    (also registered with atexit, in case the caller never gets to it)."""
    server = PostgresServer(bin_dir)
    atexit.register(server.stop)
    try:
        server.init()
        server.start_server()
    except BaseException:
        server.stop()
        raise
    return server
