"""Classes in the run store: create, join, leave, lessons, the teacher's board.

A class has a short join code that is easy to read aloud (no 0/O, 1/l/I) and a
teacher token: a 256-bit secret in the teacher link, of which the store keeps
only the SHA-256. Students join with a display name unique in the class; their
runs in that browser carry the class's id as well as their workspace. The
board is read from the store, so it works whichever replica the teacher and
the students are on. Nothing here draws anything (see ``views/classroom.py``).
"""

from __future__ import annotations

import hmac
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .lessons import Lesson
from .status import Status
from .store import RunStore, new_id, token_hash
from .store_schema import class_members, classes, epoch_records, runs

__all__ = ["CODE_ALPHABET", "BoardRow", "ClassError", "ClassRow", "Member", "board",
           "create_class", "end_class", "find_class", "join_class", "leave_class",
           "membership", "set_lesson", "set_step", "teacher_class", "valid_name"]

#: Join-code letters: no 0/O, 1/l/I, and no vowels (no words by accident).
CODE_ALPHABET = "23456789BCDFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 6
MAX_NAME = 24


class ClassError(ValueError):
    """A class action that cannot be done; the message says why, for the user."""


@dataclass(frozen=True)
class ClassRow:
    id: str
    code: str
    title: str
    lesson: Lesson | None
    created_at: float
    expires_at: float
    ended_at: float | None

    @property
    def open(self) -> bool:
        return self.ended_at is None and time.time() < self.expires_at


@dataclass(frozen=True)
class Member:
    class_id: str
    workspace_id: str
    display_name: str
    step: int


@dataclass(frozen=True)
class BoardRow:
    """One student on the teacher's board."""

    name: str
    workspace_id: str
    step: int  # lesson step reached (0-based)
    run_id: str | None  # latest run in the class
    status: str | None
    epochs_done: int
    epochs_planned: int
    best_accuracy: float | None
    best_params: int | None  # of the best run (ties: fewer parameters)
    latest_config: dict[str, Any] | None
    runs: int


def _class(row: Any) -> ClassRow:
    lesson = Lesson.from_dict(row.lesson) if row.lesson else None
    return ClassRow(row.id, row.code, row.title, lesson, row.created_at, row.expires_at,
                    row.ended_at)


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normal_code(text: str) -> str:
    """What a student typed, as a code: upper case, no spaces or dashes."""
    return "".join(ch for ch in text.upper() if ch.isalnum())[:CODE_LENGTH * 2]


def valid_name(text: str) -> str:
    """A display name, tidied; raises ClassError if it is empty or too long."""
    name = " ".join(unicodedata.normalize("NFKC", text).split())
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    if not name:
        raise ClassError("Type a name so your teacher knows whose network is whose.")
    if len(name) > MAX_NAME:
        raise ClassError(f"Names are at most {MAX_NAME} characters.")
    return name


def create_class(store: RunStore, title: str, lesson: Lesson | None, days: int
                 ) -> tuple[ClassRow, str]:
    """A new class and its teacher token (shown once, in the teacher link)."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    with store._write() as conn:
        for _ in range(20):
            code = _new_code()
            if conn.execute(sa.select(classes.c.id).where(classes.c.code == code)).first():
                continue
            class_id = new_id()
            conn.execute(classes.insert().values(
                id=class_id, code=code, teacher_token_hash=token_hash(token),
                title=title.strip()[:200] or "Class", created_at=now,
                expires_at=now + days * 86400,
                lesson=lesson.to_dict() if lesson else None))
            break
        else:  # pragma: no cover - 28**6 codes
            raise ClassError("No free class code; try again.")
    found = find_class(store, class_id=class_id)
    assert found is not None
    return found, token


def find_class(store: RunStore, code: str | None = None, class_id: str | None = None
               ) -> ClassRow | None:
    with store._read() as conn:
        q = sa.select(classes)
        q = q.where(classes.c.code == normal_code(code)) if code is not None else \
            q.where(classes.c.id == class_id)
        row = conn.execute(q).first()
    return None if row is None else _class(row)


def teacher_class(store: RunStore, class_id: str, token: str) -> ClassRow | None:
    """The class if ``token`` is its teacher token (constant-time compare), else None."""
    with store._read() as conn:
        row = conn.execute(sa.select(classes).where(classes.c.id == class_id)).first()
    if row is None or not hmac.compare_digest(row.teacher_token_hash, token_hash(token)):
        return None
    return _class(row)


def join_class(store: RunStore, cls: ClassRow, workspace_id: str, name: str) -> Member:
    """Join ``cls`` as ``name`` (or rename, if already a member)."""
    if not cls.open:
        raise ClassError("This class has ended. Ask your teacher for a new link.")
    name = valid_name(name)
    key = name.casefold()
    now = time.time()
    with store._write() as conn:
        taken = conn.execute(sa.select(class_members.c.workspace_id).where(
            class_members.c.class_id == cls.id, class_members.c.name_key == key,
            class_members.c.workspace_id != workspace_id)).first()
        if taken:
            raise ClassError(f"Someone in this class is already called {name!r}: pick "
                             "another name (add an initial, say).")
        mine = conn.execute(sa.select(class_members.c.step).where(
            class_members.c.class_id == cls.id,
            class_members.c.workspace_id == workspace_id)).first()
        if mine is None:
            conn.execute(class_members.insert().values(
                class_id=cls.id, workspace_id=workspace_id, display_name=name, name_key=key,
                step=0, joined_at=now))
        else:
            conn.execute(class_members.update().where(
                class_members.c.class_id == cls.id,
                class_members.c.workspace_id == workspace_id).values(
                display_name=name, name_key=key, left_at=None))
    return Member(cls.id, workspace_id, name, 0 if mine is None else mine.step)


def membership(store: RunStore, workspace_id: str) -> tuple[ClassRow, Member] | None:
    """The open class this workspace is in (the newest), with its membership."""
    now = time.time()
    with store._read() as conn:
        row = conn.execute(
            sa.select(classes, class_members.c.display_name, class_members.c.step)
            .join(class_members, class_members.c.class_id == classes.c.id)
            .where(class_members.c.workspace_id == workspace_id,
                   class_members.c.left_at.is_(None), classes.c.ended_at.is_(None),
                   classes.c.expires_at > now)
            .order_by(class_members.c.joined_at.desc()).limit(1)).first()
    if row is None:
        return None
    return _class(row), Member(row.id, workspace_id, row.display_name, row.step)


def leave_class(store: RunStore, class_id: str, workspace_id: str) -> None:
    with store._write() as conn:
        conn.execute(class_members.update().where(
            class_members.c.class_id == class_id,
            class_members.c.workspace_id == workspace_id).values(left_at=time.time()))


def set_step(store: RunStore, class_id: str, workspace_id: str, step: int) -> None:
    """Record that a student reached ``step`` (never moves backwards)."""
    with store._write() as conn:
        conn.execute(class_members.update().where(
            class_members.c.class_id == class_id, class_members.c.workspace_id == workspace_id,
            class_members.c.step < step).values(step=step))


def set_lesson(store: RunStore, class_id: str, lesson: Lesson | None) -> None:
    """Give the class a lesson (every student starts it from step 1)."""
    with store._write() as conn:
        conn.execute(classes.update().where(classes.c.id == class_id).values(
            lesson=lesson.to_dict() if lesson else None))
        conn.execute(class_members.update().where(class_members.c.class_id == class_id)
                     .values(step=0))


def end_class(store: RunStore, class_id: str) -> None:
    """End the class: students' runs are detached from it (kept in their workspaces)."""
    now = time.time()
    with store._write() as conn:
        conn.execute(classes.update().where(classes.c.id == class_id).values(ended_at=now))
        conn.execute(runs.update().where(runs.c.class_id == class_id).values(class_id=None))
        conn.execute(class_members.update().where(
            class_members.c.class_id == class_id, class_members.c.left_at.is_(None)
        ).values(left_at=now))


def board(store: RunStore, class_id: str) -> list[BoardRow]:
    """Every student of the class with their latest and best run, in joining order."""
    with store._read() as conn:
        members = conn.execute(
            sa.select(class_members).where(class_members.c.class_id == class_id,
                                           class_members.c.left_at.is_(None))
            .order_by(class_members.c.joined_at)).all()
        class_runs = conn.execute(
            sa.select(runs.c.id, runs.c.workspace_id, runs.c.status, runs.c.epochs_done,
                      runs.c.epochs_planned, runs.c.test_accuracy, runs.c.n_params,
                      runs.c.config, runs.c.created_at)
            .where(runs.c.class_id == class_id).order_by(runs.c.created_at)).all()
    by_ws: dict[str, list[Any]] = {}
    for r in class_runs:
        by_ws.setdefault(r.workspace_id, []).append(r)
    out = []
    for m in members:
        mine = by_ws.get(m.workspace_id, [])
        latest = mine[-1] if mine else None
        scored = [r for r in mine if r.test_accuracy is not None and r.status == Status.DONE]
        best = min(scored, key=lambda r: (-r.test_accuracy, r.n_params)) if scored else None
        out.append(BoardRow(
            name=m.display_name, workspace_id=m.workspace_id, step=m.step,
            run_id=latest.id if latest else None, status=latest.status if latest else None,
            epochs_done=latest.epochs_done if latest else 0,
            epochs_planned=latest.epochs_planned if latest else 0,
            best_accuracy=best.test_accuracy if best else None,
            best_params=best.n_params if best else None,
            latest_config=dict(latest.config) if latest else None, runs=len(mine)))
    return out


def loss_curves(store: RunStore, run_ids: list[str], max_points: int = 300
                ) -> dict[str, tuple[list[int], list[float | None]]]:
    """Training-loss curves of ``run_ids`` (thinned to about ``max_points`` each)."""
    if not run_ids:
        return {}
    with store._read() as conn:
        rows = conn.execute(
            sa.select(epoch_records.c.run_id, epoch_records.c.epoch,
                      epoch_records.c.train_loss)
            .where(epoch_records.c.run_id.in_(run_ids))
            .order_by(epoch_records.c.run_id, epoch_records.c.epoch)).all()
    curves: dict[str, tuple[list[int], list[float | None]]] = {}
    for r in rows:
        xs, ys = curves.setdefault(r.run_id, ([], []))
        xs.append(r.epoch)
        ys.append(r.train_loss)
    for run_id, (xs, ys) in curves.items():
        step = max(1, len(xs) // max_points)
        if step > 1:
            curves[run_id] = (xs[::step] + xs[-1:], ys[::step] + ys[-1:])
    return curves
