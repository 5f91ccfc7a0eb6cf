"""The app over its run store (AppTest): retention, a dead store, bundles, recover links.

Every AppTest session is a new browser without cookies, so each test gets its
own workspace; the store is the session's SQLite file (tests/conftest.py) unless
a test points NNPG_DATA_DIR elsewhere.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from nn_core.io import load_network
from playground.bundle import FORMAT, BundleError, read_bundle
from tests.test_app import app, fresh_caches, train  # noqa: F401 (fresh_caches: autouse)


def run_id(at) -> str:
    value = at.query_params["run"]
    return value[0] if isinstance(value, list) else value


def test_runs_beyond_the_limit_are_dropped_oldest_first_and_the_page_says_so(monkeypatch):
    monkeypatch.setenv("NNPG_MAX_RUNS_PER_WORKSPACE", "2")
    at = app(dataset="Iris", epochs=10)
    for _ in range(3):
        train(at)
    notice = " ".join(i.value for i in at.info)
    assert "Deleted 1 of your oldest runs" in notice and "Run 1" in notice
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert list(at.dataframe[0].value["run"]) == ["Run 3", "Run 2"]


def test_a_dead_store_is_explained_and_training_still_works(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    monkeypatch.setenv("NNPG_DATA_DIR", str(blocker / "store"))
    at = app(dataset="Iris", epochs=10)
    assert any("run store" in w.value and "unavailable" in w.value for w in at.warning)
    train(at)
    assert at.success and "Trained 10 epochs" in at.success[0].value
    assert "not saved" in at.caption[0].value
    at.switch_page("views/compare.py").run()
    assert not at.exception
    assert any("unavailable" in w.value for w in at.warning)


def test_bundle_of_a_run_reopens_as_a_new_run(tmp_path):
    from playground.bundle import make_bundle
    from playground.runs import open_run, run_snapshot

    at = app(dataset="Iris", epochs=10)
    train(at)
    view = open_run(run_id(at), None)
    snap = run_snapshot(view)
    from playground.resources import get_store

    data = make_bundle(view, snap, get_store().model(view.id), None)
    bundle = read_bundle(data, 10 * 2**20)
    assert bundle.config == view.config and len(bundle.records) == 10
    network, classes, _ = load_network(io.BytesIO(bundle.model))
    assert network.hidden_layer_sizes == (64, 32)
    assert list(classes) == ["setosa", "versicolor", "virginica"]
    # upload it in another workspace (a new AppTest session has no cookie)
    other = app()
    other.switch_page("views/compare.py").run()
    other.file_uploader(key="bundle_file").set_value(("run-1.zip", data, "application/zip"))
    other.run()
    assert not other.exception
    assert any("Opened the bundle" in s.value for s in other.success)
    table = other.dataframe[0].value
    assert list(table["run"]) == ["Run 1 (from bundle)"]
    assert table["test accuracy"][0] == pytest.approx(
        snap.evaluation.accuracy)


def _zip(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return buf.getvalue()


@pytest.mark.parametrize(("data", "message"), [
    (b"not a zip", "not a .zip"),
    (_zip(**{"run.json": b"{}", "evil.sh": b"rm -rf /"}), "nothing else"),
    (_zip(**{"run.json": b"[" * 100_000}), "not valid JSON"),
    (_zip(**{"run.json": b'{"format": "other"}'}), "format"),
    (_zip(**{"run.json": json.dumps({"format": FORMAT}).encode()}), "no model.npz"),
    (_zip(**{"run.json": json.dumps({"format": FORMAT}).encode(), "model.npz": b"junk"}),
     "'config'"),
    (_zip(**{"run.json": b"\x00" * (9 * 2**20)}), "too large"),
])
def test_damaged_or_hostile_bundles_get_a_clear_message(data, message):
    with pytest.raises(BundleError, match=message):
        read_bundle(data, 10 * 2**20)


def test_recover_link_moves_the_workspace_and_leaves_the_address_bar():
    owner = app(dataset="Iris", epochs=10)
    train(owner)
    token = owner.session_state["_workspace_token"]
    guest = app(recover=token)
    assert "recover" not in guest.query_params  # the secret left the address bar
    assert any("recovered workspace" in s.value for s in guest.success)
    guest.switch_page("views/compare.py").run()
    assert list(guest.dataframe[0].value["run"]) == ["Run 1"]
    bad = app(recover="x")
    assert any("not valid" in e.value for e in bad.error)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("NNPG_MAX_LAYERS", "0", "NNPG_MAX_LAYERS must be >= 1"),
    ("NNPG_MAX_UNITS", "1", "NNPG_MAX_UNITS must be >= 2"),
    ("NNPG_MAX_JOBS", "two", "NNPG_MAX_JOBS must be an integer"),
    ("NNPG_DATABASE_URL", "mysql://root:secret@db/x", "NNPG_DATABASE_URL must start with"),
])
def test_a_bad_operator_setting_is_named_on_the_page(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    at = app()
    assert not at.exception
    assert says in at.error[0].value and "misconfigured" in at.error[0].value
    assert "secret" not in at.error[0].value  # a password in a URL is never echoed


def test_a_zip_bomb_bundle_is_refused_before_it_is_unpacked():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("run.json", b" " * (5 * 2**20))  # 5 MB of spaces: ~5 KB compressed
    with pytest.raises(BundleError, match="too large when unpacked"):
        read_bundle(buf.getvalue(), 10 * 2**20)
