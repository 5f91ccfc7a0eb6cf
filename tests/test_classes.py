"""Classes in the run store (SQLite and a real PostgreSQL): codes, tokens, joining, the board."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
import sqlalchemy as sa

from playground.classes import (
    CODE_ALPHABET,
    ClassError,
    board,
    create_class,
    end_class,
    find_class,
    join_class,
    leave_class,
    membership,
    set_step,
    teacher_class,
)
from playground.evaluation import Evaluation
from playground.lessons import builtin_lessons
from playground.store import DatasetIdentity, RunStore
from playground.store_schema import classes

LESSON = builtin_lessons()["2_learning_rate_too_high"]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'runs.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = RunStore(url)
    yield s
    s.close()


def run_in(store, ws, cls, accuracy, n_params, status="done", step=0):
    run = store.create_run(ws, config={"learning_rate": 1.0}, dataset=DatasetIdentity(
        "builtin", "Moons", {}), classes=[0, 1], n_params=n_params, batch_size=32,
        epochs_planned=10, server_id=None, class_id=cls.id, lesson_step=step)
    summary = {"accuracy": accuracy, "macro_f1": accuracy}
    evaluation = Evaluation(epoch=10, loss=0.5, summary=summary,
                            y_pred=np.zeros(4, np.int16), confidence=np.ones(4, np.float32))
    store.finish_run(run.id, status, "x", evaluation, b"model")
    return run


def test_codes_are_short_unambiguous_and_unique(store):
    codes = {create_class(store, f"c{i}", None, 14)[0].code for i in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert re.fullmatch(f"[{CODE_ALPHABET}]{{6}}", code)
        assert not set(code) & set("0O1lI")


def test_teacher_token_is_required_and_not_stored(store):
    cls, token = create_class(store, "Year 11", LESSON, 14)
    assert len(token) >= 40
    assert teacher_class(store, cls.id, token).id == cls.id
    assert teacher_class(store, cls.id, token[:-1] + "x") is None
    assert teacher_class(store, cls.id, "") is None
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(classes)).first()
    assert token not in repr(tuple(row))
    assert find_class(store, code=cls.code.lower()).lesson == LESSON  # typed in lower case


def test_join_names_leave_and_end(store):
    cls, _ = create_class(store, "Year 11", LESSON, 14)
    a, b = store.workspace_for_token("a" * 40), store.workspace_for_token("b" * 40)
    join_class(store, cls, a, "  Ada   Lovelace ")
    assert membership(store, a)[1].display_name == "Ada Lovelace"
    with pytest.raises(ClassError, match="already called"):
        join_class(store, cls, b, "ada lovelace")  # names are unique, case-insensitively
    with pytest.raises(ClassError, match="at most"):
        join_class(store, cls, b, "x" * 25)
    with pytest.raises(ClassError, match="Type a name"):
        join_class(store, cls, b, " \u200b ")
    join_class(store, cls, b, "<b>Bea</b>")  # stored as typed; escaped where shown
    run_in(store, a, cls, 0.9, 500)
    set_step(store, cls.id, a, 1)
    set_step(store, cls.id, a, 0)  # never backwards
    assert membership(store, a)[1].step == 1
    leave_class(store, cls.id, b)
    assert membership(store, b) is None
    assert [r.name for r in board(store, cls.id)] == ["Ada Lovelace"]
    end_class(store, cls.id)
    assert membership(store, a) is None
    runs, _ = store.list_runs(a)
    assert runs and runs[0].class_id is None  # detached, not deleted
    with pytest.raises(ClassError, match="ended"):
        join_class(store, find_class(store, class_id=cls.id), b, "Bea")


def test_expired_class_cannot_be_joined(store):
    cls, _ = create_class(store, "Old", None, 14)
    with store._write() as conn:
        conn.execute(classes.update().values(expires_at=time.time() - 1))
    ws = store.workspace_for_token("c" * 40)
    with pytest.raises(ClassError, match="ended"):
        join_class(store, find_class(store, code=cls.code), ws, "Cy")


def test_board_best_run_and_ties(store):
    cls, _ = create_class(store, "Year 11", LESSON, 14)
    ws = {n: store.workspace_for_token(n * 40) for n in "abc"}
    for n, name in zip("abc", ("Ada", "Bea", "Cy")):
        join_class(store, cls, ws[n], name)
    run_in(store, ws["a"], cls, 0.90, 500)
    run_in(store, ws["a"], cls, 0.95, 900)
    run_in(store, ws["b"], cls, 0.95, 400)  # same accuracy, smaller: ahead of Ada
    run_in(store, ws["c"], cls, 0.99, 100, status="diverged")  # not a finished score
    rows = {r.name: r for r in board(store, cls.id)}
    assert (rows["Ada"].best_accuracy, rows["Ada"].best_params, rows["Ada"].runs) == \
        (0.95, 900, 2)
    assert rows["Cy"].best_accuracy is None and rows["Cy"].status == "diverged"
    ranked = sorted((r for r in rows.values() if r.best_accuracy is not None),
                    key=lambda r: (-r.best_accuracy, r.best_params))
    assert [r.name for r in ranked] == ["Bea", "Ada"]
