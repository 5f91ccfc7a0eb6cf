"""Lessons: small TOML files with steps, presets, locked controls and goals.

A lesson file (the format is documented in the README, "Writing a lesson")::

    title = "Why hidden layers?"
    summary = "A straight line cannot separate a spiral."      # optional

    [[steps]]
    title = "No hidden layer"
    prompt = \"\"\"Markdown shown in the sidebar...\"\"\"
    preset = { dataset = "Spiral", n_layers = 0, epochs = 300 }   # optional
    lock = ["dataset", "n_layers"]     # shown disabled, with a lock and why
    hide = ["dropout", "clip_norm"]    # not shown at all (the preset value is used)
    goal = "test_accuracy >= 0.6"      # checked on the finished run; optional

Every field is checked when the file is read (:func:`parse_lesson`) and each
problem is reported with its line number (:class:`LessonError`). A goal is a
small expression over the finished run's numbers (:data:`GOAL_NAMES`) joined
with ``and``/``or``; it is parsed with :mod:`ast` against a whitelist and never
evaluated with ``eval``.
"""

from __future__ import annotations

import ast
import operator
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .config import (
    ACTIVATIONS,
    ALPHAS,
    CLIP_NORMS,
    DATASETS,
    EPOCH_CHOICES,
    INITIALIZERS,
    LEARNING_RATES,
    MAX_HIDDEN_LAYERS,
    OPTIMIZERS,
    SCHEDULES,
    WIDGET_FIELDS,
    RunConfig,
)

__all__ = ["CONTROLS", "GOAL_NAMES", "LESSON_DIR", "Goal", "Lesson", "LessonError", "Step",
           "builtin_lessons", "parse_lesson"]

LESSON_DIR = Path(__file__).resolve().parents[1] / "lessons"
MAX_BYTES = 64 * 1024
MAX_STEPS = 20

#: The controls a step may preset, lock or hide (the sidebar widgets' keys).
CONTROLS: tuple[str, ...] = (*WIDGET_FIELDS,
                             *(f"units_{i}" for i in range(1, MAX_HIDDEN_LAYERS + 1)))
#: What a goal may test, with what each means.
GOAL_NAMES: dict[str, str] = {
    "test_accuracy": "accuracy on the test set, 0 to 1",
    "macro_f1": "mean per-class F1 on the test set, 0 to 1",
    "train_loss": "training loss of the last epoch",
    "val_loss": "validation loss of the last epoch",
    "n_params": "weights and biases of the network",
    "epochs": "epochs trained",
    "hidden_layers": "number of hidden layers",
}
#: Allowed values of the choice controls (a preset must use one of them).
_CHOICES: dict[str, tuple] = {
    "dataset": tuple(DATASETS), "activation": tuple(ACTIVATIONS),
    "optimizer": tuple(OPTIMIZERS), "lr_schedule": tuple(SCHEDULES),
    "init": tuple(INITIALIZERS),
    "learning_rate": LEARNING_RATES, "alpha": ALPHAS, "clip_norm": CLIP_NORMS,
    "epochs": EPOCH_CHOICES,
}
_RANGES: dict[str, tuple[float, float]] = {
    "n_samples": (100, 2000), "noise": (0.0, 0.5), "n_classes": (2, 8), "test_size": (10, 50),
    "val_size": (0, 30), "n_layers": (0, MAX_HIDDEN_LAYERS), "batch_size": (1, 100_000),
    "dropout": (0.0, 0.9), "seed": (0, 2**31 - 1),
    **{f"units_{i}": (1, 256) for i in range(1, MAX_HIDDEN_LAYERS + 1)},
}
_DEFAULTS = RunConfig()
_TYPES = {f.name: type(getattr(_DEFAULTS, f.name)) for f in fields(RunConfig)
          if f.name in WIDGET_FIELDS}


class LessonError(ValueError):
    """A lesson file that cannot be used; ``problems`` lists each with its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
           ast.NotEq: "!="}


@dataclass(frozen=True)
class Goal:
    """A goal such as ``test_accuracy >= 0.95 and n_params <= 500``."""

    text: str

    def __post_init__(self) -> None:
        if len(self.text) > 300:
            raise ValueError("a goal is at most 300 characters")
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError:
            raise ValueError(f"the goal {self.text!r} is not an expression like "
                             "'test_accuracy >= 0.9 and n_params <= 500'") from None
        self._check(tree.body)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                self._check(value)
        elif isinstance(node, ast.Compare):
            for part in (node.left, *node.comparators):
                if isinstance(part, ast.Name):
                    if part.id not in GOAL_NAMES:
                        raise ValueError(f"the goal uses {part.id!r}; it may use "
                                         f"{', '.join(GOAL_NAMES)}")
                elif not (isinstance(part, ast.Constant) and type(part.value) in (int, float)):
                    raise ValueError("a goal compares run numbers with plain numbers")
            if any(type(op) not in _COMPARE for op in node.ops):
                raise ValueError("a goal compares with <, <=, >, >=, == or !=")
        else:
            raise ValueError("a goal is comparisons joined by 'and' / 'or', e.g. "
                             "'test_accuracy >= 0.9 and n_params <= 500'")

    def met(self, numbers: Mapping[str, float | None]) -> bool:
        """Does a finished run with these ``numbers`` (see GOAL_NAMES) reach the goal?"""
        return bool(self._eval(ast.parse(self.text, mode="eval").body, numbers))

    def _eval(self, node: ast.AST, numbers: Mapping[str, float | None]) -> bool | float:
        if isinstance(node, ast.BoolOp):
            parts = (self._eval(v, numbers) for v in node.values)
            return all(parts) if isinstance(node.op, ast.And) else any(parts)
        if isinstance(node, ast.Compare):
            left = self._value(node.left, numbers)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._value(right_node, numbers)
                if left is None or right is None or not _COMPARE[type(op)](left, right):
                    return False
                left = right
            return True
        raise AssertionError("checked in __post_init__")

    @staticmethod
    def _value(node: ast.AST, numbers: Mapping[str, float | None]) -> float | None:
        if isinstance(node, ast.Name):
            return numbers.get(node.id)
        return node.value  # a number (checked)


@dataclass(frozen=True)
class Step:
    """One step of a lesson."""

    title: str
    prompt: str  # Markdown (the teacher's text)
    preset: dict[str, Any]  # control key -> value
    lock: tuple[str, ...]
    hide: tuple[str, ...]
    goal: Goal | None

    def fixed(self) -> dict[str, Any]:
        """Controls whose value the step decides (locked or hidden) and that value."""
        return {k: self.preset[k] for k in (*self.lock, *self.hide) if k in self.preset}


@dataclass(frozen=True)
class Lesson:
    """A validated lesson."""

    title: str
    summary: str
    steps: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "summary": self.summary,
                "steps": [{"title": s.title, "prompt": s.prompt, "preset": s.preset,
                           "lock": list(s.lock), "hide": list(s.hide),
                           "goal": s.goal.text if s.goal else None} for s in self.steps]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lesson:
        """A lesson stored by :meth:`to_dict` (validated again)."""
        return _lesson(dict(d), lambda *_: 0)


def _line_finder(text: str) -> Any:
    """``where(step, key)`` -> the line of ``key`` in the ``step``-th [[steps]] table."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*\[\[\s*steps\s*\]\]", line)]

    def where(step: int | None, key: str | None) -> int:
        lo = 0 if step is None else (starts[step] if step < len(starts) else 0)
        hi = len(lines) if step is None or step + 1 >= len(starts) else starts[step + 1]
        if step is None and starts:
            hi = starts[0]
        if key is not None:
            pattern = re.compile(rf"\s*{re.escape(key)}\s*=")
            for i in range(lo, hi):
                if pattern.match(lines[i]):
                    return i + 1
        return lo + 1
    return where


def _text(value: Any, limit: int) -> str | None:
    return value.strip() if isinstance(value, str) and 0 < len(value.strip()) <= limit else None


def _preset(raw: Any, problems: list[str], at: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{at}: preset must be a table like {{ dataset = \"Spiral\" }}")
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in CONTROLS:
            problems.append(f"{at}: preset sets {key!r}, which is not a control "
                            f"(controls: {', '.join(CONTROLS)})")
            continue
        kind = int if key.startswith("units_") else _TYPES[key]
        if kind is float and type(value) is int:
            value = float(value)
        if type(value) is not kind:
            problems.append(f"{at}: preset {key} must be {kind.__name__}, got {value!r}")
            continue
        if key in _CHOICES and value not in _CHOICES[key]:
            problems.append(f"{at}: preset {key} = {value!r} is not one of the choices "
                            f"{', '.join(map(str, _CHOICES[key]))}")
            continue
        if key in _RANGES and not _RANGES[key][0] <= value <= _RANGES[key][1]:
            lo, hi = _RANGES[key]
            problems.append(f"{at}: preset {key} = {value!r} is outside {lo}..{hi}")
            continue
        out[key] = value
    return out


def _names(raw: Any, what: str, problems: list[str], at: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        problems.append(f"{at}: {what} must be a list of control names")
        return ()
    bad = [k for k in raw if k not in CONTROLS]
    if bad:
        problems.append(f"{at}: {what} names {', '.join(map(repr, bad))}, not controls "
                        f"(controls: {', '.join(CONTROLS)})")
    return tuple(k for k in raw if k in CONTROLS)


def _lesson(doc: dict[str, Any], where: Any) -> Lesson:
    problems: list[str] = []
    known = {"title", "summary", "steps"}
    for key in doc:
        if key not in known:
            problems.append(f"line {where(None, key)}: unknown field {key!r} (a lesson has "
                            "title, summary and [[steps]])")
    title = _text(doc.get("title"), 120)
    if title is None:
        problems.append(f"line {where(None, 'title')}: title must be text of 1 to 120 "
                        "characters")
    summary = doc.get("summary", "")
    if not isinstance(summary, str) or len(summary) > 2000:
        problems.append(f"line {where(None, 'summary')}: summary must be text (at most 2000 "
                        "characters)")
        summary = ""
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not 1 <= len(raw_steps) <= MAX_STEPS:
        problems.append(f"line {where(None, None)}: a lesson needs 1 to {MAX_STEPS} "
                        "[[steps]] tables")
        raw_steps = []
    steps = []
    for n, raw in enumerate(raw_steps):
        at = f"line {where(n, None)}: step {n + 1}"
        if not isinstance(raw, dict):
            problems.append(f"{at}: must be a table")
            continue
        for key in raw:
            if key not in {"title", "prompt", "preset", "lock", "hide", "goal"}:
                problems.append(f"line {where(n, key)}: step {n + 1}: unknown field {key!r} "
                                "(a step has title, prompt, preset, lock, hide, goal)")
        step_title = _text(raw.get("title"), 120)
        if step_title is None:
            problems.append(f"line {where(n, 'title')}: step {n + 1}: title must be text of "
                            "1 to 120 characters")
        prompt = _text(raw.get("prompt"), 4000)
        if prompt is None:
            problems.append(f"line {where(n, 'prompt')}: step {n + 1}: prompt must be text "
                            "of 1 to 4000 characters")
        preset = _preset(raw.get("preset"), problems,
                         f"line {where(n, 'preset')}: step {n + 1}")
        lock = _names(raw.get("lock"), "lock", problems, f"line {where(n, 'lock')}: step {n + 1}")
        hide = _names(raw.get("hide"), "hide", problems, f"line {where(n, 'hide')}: step {n + 1}")
        for key in (*lock, *hide):
            if key not in preset:
                problems.append(f"line {where(n, 'lock' if key in lock else 'hide')}: step "
                                f"{n + 1}: {key!r} is locked or hidden but the preset gives "
                                "it no value")
        goal = None
        if raw.get("goal") is not None:
            if not isinstance(raw["goal"], str):
                problems.append(f"line {where(n, 'goal')}: step {n + 1}: goal must be text")
            else:
                try:
                    goal = Goal(raw["goal"])
                except ValueError as exc:
                    problems.append(f"line {where(n, 'goal')}: step {n + 1}: {exc}")
        steps.append(Step(step_title or "", prompt or "", preset, lock, hide, goal))
    if problems:
        raise LessonError(problems)
    return Lesson(title or "", summary, tuple(steps))


def parse_lesson(data: bytes | str) -> Lesson:
    """Read and validate a lesson file (TOML).

    Raises
    ------
    LessonError
        Everything that is wrong, one message per problem with its line number.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise LessonError([f"the file is {len(data):,} bytes; a lesson may be at most "
                               f"{MAX_BYTES:,}"])
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise LessonError(["the file is not UTF-8 text"]) from None
    try:
        doc = tomllib.loads(data)
    except tomllib.TOMLDecodeError as exc:
        # tomllib says where: "... (at line 3, column 7)"
        raise LessonError([f"not valid TOML: {exc}"]) from None
    except RecursionError:
        raise LessonError(["the file nests too deeply to be a lesson"]) from None
    return _lesson(doc, _line_finder(data))


def builtin_lessons() -> dict[str, Lesson]:
    """The lessons shipped in ``lessons/``, by file name (without ``.toml``)."""
    return {path.stem: parse_lesson(path.read_bytes())
            for path in sorted(LESSON_DIR.glob("*.toml"))}
