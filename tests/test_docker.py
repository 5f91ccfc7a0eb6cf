"""The Docker image, tested without a Docker engine (none runs on these machines).

What the Dockerfile declares is parsed and checked (base image, user, port,
layer order, exec-form ENTRYPOINT and HEALTHCHECK), the build context that
``.dockerignore`` leaves is computed, and then the declared ENTRYPOINT and
HEALTHCHECK are run for real from the repository root with the Dockerfile's ENV
applied: the app must become healthy, start its training workers for a browser
session, and on SIGTERM to the server process alone stop itself and every
worker within 10 s, the way ``docker stop`` expects of PID 1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, expect

from tests.servers import (
    IDLE,
    LOSS_POINTS_JS,
    ROOT,
    free_port,
    still_running,
    wait_gone,
    wait_healthy,
    worker_processes,
)

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


# ---- a small Dockerfile reader ------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, ENV, RUN, ...
    args: str  # the rest of the (joined) line
    line: int  # 1-based line where it starts


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, ``\\`` continuations joined.

    Like Docker, comment lines inside a continued instruction are skipped.
    """
    out: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        if stripped.endswith("\\"):
            parts.append(stripped[:-1].strip())
            continue
        parts.append(stripped)
        joined = " ".join(parts)
        parts = []
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
    assert not parts, "the Dockerfile ends inside a continued line"
    return out


def parse_env(instructions: list[Instruction]) -> dict[str, str]:
    """Variables set by ENV (``ENV a=1 b="x y"`` and the legacy ``ENV a 1``)."""
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword != "ENV":
            continue
        words = shlex.split(ins.args)
        if "=" not in words[0]:  # legacy form: one variable, the rest is its value
            env[words[0]] = ins.args.split(None, 1)[1]
            continue
        for word in words:
            key, sep, value = word.partition("=")
            assert sep, f"line {ins.line}: cannot read ENV item {word!r}"
            env[key] = value
    # This reader does not expand ${VAR}; fail instead of running with a wrong value.
    assert not [k for k, v in env.items() if "$" in v], "ENV values refer to variables"
    return env


def exec_form(args: str, what: str) -> list[str]:
    """A JSON-array (exec form) argument list; shell form fails the test."""
    assert args.startswith("["), f"{what} must use the exec form (JSON array): {args}"
    value = json.loads(args)
    assert isinstance(value, list) and value and all(isinstance(v, str) for v in value), value
    return value


@dataclass(frozen=True)
class Healthcheck:
    options: dict[str, str]  # --interval=30s -> {"interval": "30s"}
    command: list[str]


def parse_healthcheck(args: str) -> Healthcheck:
    options: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        option, _, rest = rest.partition(" ")
        name, _, value = option[2:].partition("=")
        options[name] = value
        rest = rest.lstrip()
    keyword, _, command = rest.partition(" ")
    assert keyword.upper() == "CMD", f"HEALTHCHECK must run a CMD: {args}"
    return Healthcheck(options, exec_form(command.strip(), "HEALTHCHECK CMD"))


def seconds(duration: str) -> float:
    """Docker duration ("5s", "1m30s", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    pairs = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert pairs and "".join(n + u for n, u in pairs) == duration, duration
    return sum(float(n) * units[u] for n, u in pairs)


def one(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected exactly one {keyword}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


# ---- what the Dockerfile declares ---------------------------------------------

def test_hadolint_passes() -> None:
    # The same check as `make lint`, so that `pytest` alone covers it too.
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), f"{hadolint} missing: pip install -r requirements-dev.txt"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_workdir_user_port(dockerfile: list[Instruction]) -> None:
    assert one(dockerfile, "FROM").args == "python:3.12-slim"
    assert one(dockerfile, "WORKDIR").args == "/app"
    assert one(dockerfile, "EXPOSE").args.split() == ["8501"]

    user = one(dockerfile, "USER").args
    # Numeric (Kubernetes' runAsNonRoot can only verify a number) and not root.
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER must be numeric uid[:gid], got {user!r}"
    uid = int(user.split(":")[0])
    assert uid != 0, "the app must not run as root"
    # The uid exists in the image (a passwd entry gives it a name and a HOME).
    assert any(i.keyword == "RUN" and re.search(rf"useradd\b.*(--uid|-u)[ =]{uid}\b", i.args)
               for i in dockerfile), f"no RUN useradd creates uid {uid}"
    # USER comes after everything that needs root (installing packages).
    assert max(i.line for i in dockerfile if i.keyword == "RUN") < one(dockerfile, "USER").line


def test_dependencies_are_installed_before_the_app_is_copied(
        dockerfile: list[Instruction]) -> None:
    # Layer caching: editing the app must not reinstall the dependencies.
    def index(predicate: Callable[[Instruction], bool], what: str) -> int:
        found = [n for n, i in enumerate(dockerfile) if predicate(i)]
        assert found, f"no {what} in the Dockerfile"
        return found[0]

    copy_reqs = index(lambda i: i.keyword == "COPY" and i.args.split()[:-1] == ["requirements.txt"],
                      "COPY requirements.txt <dest>")
    install = index(lambda i: i.keyword == "RUN"
                    and "pip install --no-cache-dir -r requirements.txt" in i.args,
                    "RUN pip install --no-cache-dir -r requirements.txt")
    copy_app = index(lambda i: i.keyword == "COPY" and i.args.split() == [".", "."],
                     "COPY . .")
    assert copy_reqs < install < copy_app


def test_environment(dockerfile: list[Instruction]) -> None:
    env = parse_env(dockerfile)
    assert env["STREAMLIT_SERVER_HEADLESS"] == "true"
    assert env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    assert env["STREAMLIT_SERVER_FILE_WATCHER_TYPE"] == "none"
    assert env["STREAMLIT_SERVER_PORT"] == "8501"
    # Inside a container the server must listen on all interfaces, not loopback.
    assert env["STREAMLIT_SERVER_ADDRESS"] == "0.0.0.0"
    for blas in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[blas] == "1", blas
    # The SQLite run store lives in the data volume (no NNPG_DATABASE_URL baked in).
    assert env["NNPG_DATA_DIR"] == "/data"
    assert "NNPG_DATABASE_URL" not in env


def test_data_volume_is_owned_by_the_app_user(dockerfile: list[Instruction]) -> None:
    volume = one(dockerfile, "VOLUME")
    assert exec_form(volume.args, "VOLUME") == [parse_env(dockerfile)["NNPG_DATA_DIR"]]
    uid = one(dockerfile, "USER").args.split(":")[0]
    # Created and given to the user before VOLUME (later build steps cannot change a
    # volume's contents), so a new named volume starts owned by the app user.
    creates = [i for i in dockerfile if i.keyword == "RUN"
               and re.search(rf"install -d -o {uid} -g \d+( -m \d+)? /data\b", i.args)]
    assert creates and creates[0].line < volume.line < one(dockerfile, "USER").line


def test_entrypoint_and_healthcheck_are_exec_form(dockerfile: list[Instruction]) -> None:
    # Exec form: no /bin/sh -c in between, so `docker stop`'s SIGTERM reaches Streamlit.
    entrypoint = exec_form(one(dockerfile, "ENTRYPOINT").args, "ENTRYPOINT")
    assert entrypoint[:4] == ["python", "-m", "streamlit", "run"]
    assert entrypoint[4] == "app.py"

    check = parse_healthcheck(one(dockerfile, "HEALTHCHECK").args)
    assert check.command[0] == "python", "the slim image has python, not curl"
    assert not any("curl" in part or "wget" in part for part in check.command)
    assert "/_stcore/health" in " ".join(check.command)
    assert "STREAMLIT_SERVER_PORT" in " ".join(check.command), "must follow the port variable"
    assert seconds(check.options["timeout"]) <= seconds(check.options["interval"])


def test_streamlit_config_is_production_minded() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    server, client = config["server"], config["client"]
    assert server["headless"] is True
    assert 1 <= server["maxUploadSize"] <= 50, "uploads are small CSV files"
    assert server["enableXsrfProtection"] is True
    assert server["fileWatcherType"] == "none"
    assert config["browser"]["gatherUsageStats"] is False
    assert client["toolbarMode"] == "viewer"
    assert client["showErrorDetails"] in ("none", False)
    assert config["runner"]["postScriptGC"] is False


# ---- what .dockerignore leaves in the build context ----------------------------

def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore pattern (Go filepath.Match plus ``**``) as a regex."""
    pattern = os.path.normpath(pattern.strip().lstrip("/"))
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.index("]", i)
            out.append(pattern[i:end + 1])
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative, with ``/``) out of the context.

    A pattern excludes a path if it matches the path or one of its parent
    directories; the last matching pattern wins (``!`` re-includes).
    """
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _ignore_regex(pattern[1:] if negate else pattern)
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_dockerignore_keeps_the_app_and_drops_the_rest(ignore_patterns: list[str]) -> None:
    keep = ["app.py", "requirements.txt", ".streamlit/config.toml"]
    for package in ("pages", "playground", "nn_core"):
        keep += [p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")
                 if "__pycache__" not in p.parts]
    assert len(keep) > 10
    lost = [p for p in keep if dockerignored(p, ignore_patterns)]
    assert not lost, f".dockerignore drops files the app needs: {lost}"

    drop = [".venv/bin/python", ".git/HEAD", "test-artifacts/nginx_training.png",
            ".pytest_cache/v/cache/nodeids", ".ruff_cache/CACHEDIR.TAG",
            "__pycache__/x.cpython-312.pyc", "playground/__pycache__/jobs.cpython-312.pyc",
            "nn_core/network.pyc", ".streamlit/secrets.toml", "tests/test_docker.py",
            "bench/results/train.json"]
    kept = [p for p in drop if not dockerignored(p, ignore_patterns)]
    assert not kept, f".dockerignore lets these into the image: {kept}"


def test_dockerignore_reader_itself() -> None:
    # The matcher above decides the previous test, so pin its semantics.
    assert dockerignored(".venv/lib/x.py", [".venv/"])
    assert not dockerignored("a/.venv/x", [".venv/"])
    assert dockerignored("a/b/__pycache__/m.pyc", ["**/__pycache__/"])
    assert dockerignored("x.pyc", ["**/*.py[cod]"])
    assert not dockerignored("x.py", ["**/*.py[cod]"])
    assert not dockerignored("docs/keep.md", ["docs/", "!docs/keep.md"])


# ---- the ENTRYPOINT and HEALTHCHECK, run for real ------------------------------

def container_env(declared: dict[str, str], home: Path, **overrides: str) -> dict[str, str]:
    """The environment the image's processes see, with this machine's interpreter.

    Nothing from the developer's shell leaks in (a STREAMLIT_* variable there
    would change what is tested). ``python`` resolves to the virtualenv's
    interpreter, standing in for the image's /usr/local/bin/python.
    """
    return {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                     "/usr/bin", "/bin"]),
            "LANG": "C.UTF-8", "HOME": str(home), **declared, **overrides}


def run_healthcheck(check: Healthcheck, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the HEALTHCHECK command as Docker does: in WORKDIR, within its --timeout."""
    return subprocess.run(check.command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=seconds(check.options.get("timeout", "30s")) + 5)


def describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} {' '.join(p.cmdline())}")
        except psutil.NoSuchProcess:
            out.append(f"{p.pid} (gone)")
    return out


@pytest.mark.browser
@pytest.mark.slow
def test_entrypoint_serves_trains_and_stops_on_sigterm(dockerfile: list[Instruction],
                                                       tmp_path: Path,
                                                       browser: Browser) -> None:
    # What `docker run` starts: ENTRYPOINT followed by CMD (if any), both exec form.
    command = exec_form(one(dockerfile, "ENTRYPOINT").args, "ENTRYPOINT")
    cmds = [i for i in dockerfile if i.keyword == "CMD"]
    if cmds:  # the last CMD counts
        command += exec_form(cmds[-1].args, "CMD")
    check = parse_healthcheck(one(dockerfile, "HEALTHCHECK").args)
    port = free_port()
    # The image's ENV, with the port moved to a free one and loopback only (also
    # keeps Streamlit from looking up an external address); NNPG_DATA_DIR (the image's
    # /data volume) moved to an empty directory, as a new volume would be.
    env = container_env(parse_env(dockerfile), tmp_path / "home",
                        STREAMLIT_SERVER_PORT=str(port), STREAMLIT_SERVER_ADDRESS="127.0.0.1",
                        NNPG_DATA_DIR=str(tmp_path / "data"))
    (tmp_path / "home").mkdir()
    (tmp_path / "data").mkdir()

    # Before the server runs, the health check must fail: it really asks this port.
    before = run_healthcheck(check, env)
    assert before.returncode != 0, "HEALTHCHECK passed with no server listening"

    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = psutil.Process(proc.pid)
    started: list[psutil.Process] = []

    def log_tail() -> str:
        return log_path.read_text(errors="replace")[-3000:]

    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=60, proc=proc)
        healthy = run_healthcheck(check, env)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr

        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            # 2000 epochs (~10 s of Digits) so that SIGTERM arrives mid-training,
            # the hardest moment to shut down.
            page.goto(f"http://127.0.0.1:{port}/?epochs=2000", timeout=60_000)
            expect(page.locator(IDLE)).to_be_visible(timeout=60_000)
            page.get_by_role("button", name="Train", exact=True).click()
            deadline = time.monotonic() + 60
            points = 0
            while points < 2 and time.monotonic() < deadline:
                points = page.evaluate(LOSS_POINTS_JS)
                time.sleep(0.1)
            assert points >= 2, "training did not start: no loss curve after 60 s"

            started = worker_processes(proc.pid)
            assert started, f"no playground.worker child of the server\n{log_tail()}"
            points = page.evaluate(LOSS_POINTS_JS)
            assert points < 2000, "the run finished before SIGTERM; plan more epochs"
            assert page.get_by_test_id("stException").count() == 0

            # SIGTERM to the server process only, as `docker stop` does to PID 1:
            # the app itself must take its workers down.
            os.kill(proc.pid, signal.SIGTERM)
            left = wait_gone([server, *started], timeout=10)
            assert not left, (f"still running 10 s after SIGTERM: {describe(left)}\n"
                              f"{log_tail()}")
        finally:
            context.close()

        assert proc.wait(5) == 0, f"exit code {proc.returncode} after SIGTERM\n{log_tail()}"
        after = run_healthcheck(check, env)
        assert after.returncode != 0, "HEALTHCHECK still passes after the server stopped"
    finally:
        # Only if an assertion above failed: do not leave anything running.
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        for p in still_running(started):
            p.kill()
