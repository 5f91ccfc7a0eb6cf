"""The lesson a browser is following, and what it does to the sidebar and to Train.

A student follows a lesson through their class (the class's lesson and the
step they reached, in the store) or alone through a link (``?lesson=<name>``,
the step in ``&step=``). The current step

* presets the controls when the step begins (the address bar wins on a fresh
  page, so a reload keeps the student's own changes);
* locks controls (shown disabled with a lock, and **refused by the server** if
  they differ anyway, e.g. through a crafted link) or hides them;
* has a goal, checked when a run of this step finishes; reaching it moves the
  student to the next step (recorded in the store, so the board shows it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from .classes import membership, set_step
from .config import RunConfig
from .jobs import JobRefusedError
from .lessons import Lesson, Step, builtin_lessons
from .resources import get_store
from .session import Key
from .store import StoreUnavailableError

__all__ = ["LessonContext", "apply_step", "check_goal", "enforce", "fixed_values",
           "lesson_context", "run_numbers"]

log = logging.getLogger("playground")

#: Seconds a class membership looked up in the store is reused by a session.
MEMBERSHIP_TTL = 5.0


@dataclass(frozen=True)
class LessonContext:
    """The lesson on this page: which one, which step, and (in a class) whose."""

    key: str  # identifies the lesson (class id or shipped lesson name)
    lesson: Lesson
    step_index: int  # 0-based; == len(steps) when every step is done
    class_id: str | None = None
    class_title: str | None = None
    student: str | None = None
    workspace_id: str | None = None

    @property
    def step(self) -> Step | None:
        steps = self.lesson.steps
        return steps[self.step_index] if self.step_index < len(steps) else None

    @property
    def finished(self) -> bool:
        return self.step_index >= len(self.lesson.steps)


@st.cache_resource(show_spinner=False)
def shipped_lessons() -> dict[str, Lesson]:
    return builtin_lessons()


def _class_context(workspace_id: str) -> LessonContext | None:
    ss = st.session_state
    cached = ss.get(Key.MEMBERSHIP)
    if cached is None or time.monotonic() - cached[0] > MEMBERSHIP_TTL:
        store = get_store()
        found = None
        if store is not None:
            try:
                found = membership(store, workspace_id)
            except StoreUnavailableError as exc:
                log.warning("class lookup failed: %s", exc)
                found = cached[1] if cached else None
        ss[Key.MEMBERSHIP] = cached = (time.monotonic(), found)
    found = cached[1]
    if found is None:
        return None
    cls, member = found
    if cls.lesson is None:
        return LessonContext(f"class:{cls.id}", Lesson(cls.title, "", ()), 0, cls.id,
                             cls.title, member.display_name, workspace_id)
    return LessonContext(f"class:{cls.id}", cls.lesson, member.step, cls.id, cls.title,
                         member.display_name, workspace_id)


def forget_membership() -> None:
    """Look the class up again on the next rerun (joined, left, stepped on)."""
    st.session_state.pop(Key.MEMBERSHIP, None)


def lesson_context(workspace_id: str | None) -> LessonContext | None:
    """The lesson this page follows: the class's, else one opened by link, else None."""
    if workspace_id is not None:
        ctx = _class_context(workspace_id)
        if ctx is not None:
            return ctx
    name = st.query_params.get("lesson")
    if not name:
        return None
    lesson = shipped_lessons().get(name)
    if lesson is None:
        st.session_state[Key.TRAIN_ERROR] = (f"There is no lesson called {name!r}: the Classroom "
                                           "page lists the lessons.")
        del st.query_params["lesson"]
        return None
    try:
        step = max(0, int(st.query_params.get("step", "1")) - 1)
    except ValueError:
        step = 0
    return LessonContext(f"lesson:{name}", lesson, min(step, len(lesson.steps)))


def fixed_values(ctx: LessonContext | None) -> dict[str, Any]:
    """Control key -> value the current step locks or hides."""
    step = ctx.step if ctx is not None else None
    return step.fixed() if step is not None else {}


def apply_step(ctx: LessonContext | None) -> None:
    """Preset the controls once per step (before the sidebar is drawn)."""
    ss = st.session_state
    step = ctx.step if ctx is not None else None
    if ctx is None or step is None:
        return
    mark = (ctx.key, ctx.step_index)
    if ss.get(Key.LESSON_APPLIED) == mark:
        return
    fresh_page = Key.LESSON_APPLIED not in ss
    for key, value in step.preset.items():
        if fresh_page and key in st.query_params:
            continue  # the address bar (a reload, or a shared set-up) wins
        ss[key] = value
    ss[Key.LESSON_APPLIED] = mark


def enforce(cfg: RunConfig, ctx: LessonContext | None) -> None:
    """Refuse a run whose locked or hidden controls differ from the step's values.

    Raises
    ------
    JobRefusedError
        Naming the control, its fixed value and the one asked for.
    """
    for key, value in fixed_values(ctx).items():
        if key.startswith("units_"):
            i = int(key.split("_")[1]) - 1
            asked = cfg.units[i]
        else:
            asked = getattr(cfg, key)
        if asked != value:
            raise JobRefusedError(
                f"This lesson step fixes {key.replace('_', ' ')} at {value} (it is locked in "
                f"the sidebar), but this run asks for {asked}. Press Reset or reload the "
                "lesson's link to get its settings back.")


def run_numbers(run: Any) -> dict[str, float | None]:
    """What a goal can test, for a finished stored run (see lessons.GOAL_NAMES)."""
    cfg = RunConfig.from_dict(run.config)
    return {"test_accuracy": run.test_accuracy, "macro_f1": run.macro_f1,
            "train_loss": run.train_loss, "val_loss": run.val_loss,
            "n_params": run.n_params, "epochs": run.epochs_done,
            "hidden_layers": cfg.n_layers}


def check_goal(ctx: LessonContext | None, run: Any) -> str | None:
    """If ``run`` (finished, of the current step) reaches the step's goal, move on.

    Returns the message to show, or None when nothing changed.
    """
    if ctx is None or ctx.step is None or run is None or run.active:
        return None
    if run.lesson_step is not None and run.lesson_step != ctx.step_index:
        return None
    if ctx.class_id is not None and run.class_id != ctx.class_id:
        return None
    goal = ctx.step.goal
    if goal is not None and not goal.met(run_numbers(run)):
        return None
    nxt = ctx.step_index + 1
    if ctx.class_id is not None:
        store = get_store()
        if store is None:
            return None
        set_step(store, ctx.class_id, ctx.workspace_id, nxt)
        forget_membership()
    else:
        st.query_params["step"] = str(nxt + 1)
    done = f"Goal reached ({goal.text})" if goal else "Step done"
    if nxt >= len(ctx.lesson.steps):
        return f"{done}: that was the last step of \u201c{ctx.lesson.title}\u201d. Well done!"
    return f"{done}. On to step {nxt + 1}: {ctx.lesson.steps[nxt].title}."


