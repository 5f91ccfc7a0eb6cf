import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests that time or compare numerics run BLAS single-threaded, as the app's workers do.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Lets scikit-learn's estimator checks include check_array_api_input (NumPy
# namespace) instead of skipping it; must be set before SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
# The app's run store (SQLite) of this test session: a throw-away directory that
# every app process the tests start inherits, never the developer's data/.
os.environ.setdefault("NNPG_DATA_DIR", tempfile.mkdtemp(prefix="nnpg-test-store-"))



@pytest.fixture(scope="session")
def digits_split():
    """The tutorial's split: Digits, StandardScaler, test_size=0.2, random_state=3."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=3)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# ---- browser tests (pytest-playwright with Debian's chromium) ---------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    from tests.servers import CHROMIUM, CHROMIUM_ARGS

    # Never skip: a missing browser is a broken set-up (make test installs it).
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run `make test` (installs chromium)"
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1500, "height": 1300}}


@pytest.fixture(scope="module")
def app_server():
    """A real app server for the module's browser tests: (process, base URL)."""
    from tests.servers import start_app, stop

    proc, url = start_app()
    yield proc, url
    stop(proc)


@pytest.fixture(scope="module")
def app_url(app_server):
    return app_server[1]


@pytest.fixture
def artifacts():
    from tests.servers import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# ---- PostgreSQL (a throw-away cluster, tests/postgres.py) ---------------------
@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the whole session (about 1 s to start).

    Never skipped: missing binaries fail with a pointer to `make test`. Stopped
    and its directory removed at the end of the session, and by atexit if the
    session dies before its teardown runs.
    """
    from tests.postgres import start_postgres

    server = start_postgres()  # registers server.stop with atexit
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request):
    """SQLAlchemy URL of a new, empty database for this test; dropped afterwards.

    A test that stops the server (to simulate an outage) need not restart it:
    the teardown does, so the next test gets a running server.
    """
    import re
    import uuid

    test = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    name = f"t_{test[:40]}_{uuid.uuid4().hex[:8]}"  # PostgreSQL names: at most 63 bytes
    url = postgres_server.create_database(name)
    yield url
    if not postgres_server.is_running:
        postgres_server.start_server()
    postgres_server.drop_database(name)
