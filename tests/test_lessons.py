"""Lesson files: the shipped lessons, validation with line numbers, safe goals."""

from __future__ import annotations

import pytest

from playground.lessons import CONTROLS, Goal, LessonError, builtin_lessons, parse_lesson

GOOD = """\
title = "Test"

[[steps]]
title = "One"
prompt = "Train it."
preset = { dataset = "Moons", learning_rate = 0.03, units_1 = 16 }
lock = ["learning_rate"]
hide = ["dataset"]
goal = "test_accuracy >= 0.9 and n_params <= 500"
"""


def test_shipped_lessons_are_valid_and_cover_the_five_topics():
    lessons = builtin_lessons()
    assert len(lessons) >= 5
    titles = " ".join(lesson.title.lower() for lesson in lessons.values())
    for topic in ("hidden layers", "learning rate", "vanishing", "overfitting", "digits"):
        assert topic in titles
    spiral = lessons["1_why_hidden_layers"]
    assert [s.preset["n_layers"] for s in spiral.steps] == [0, 1, 3]
    assert all(s.preset["dataset"] == "Spiral" for s in spiral.steps)
    vanishing = lessons["3_vanishing_gradients"].steps[0].preset
    assert vanishing["activation"] == "sigmoid" and vanishing["n_layers"] == 6


def test_a_good_lesson_round_trips():
    lesson = parse_lesson(GOOD.encode())
    step = lesson.steps[0]
    assert step.lock == ("learning_rate",) and step.hide == ("dataset",)
    assert step.fixed() == {"learning_rate": 0.03, "dataset": "Moons"}
    assert type(lesson).from_dict(lesson.to_dict()) == lesson


@pytest.mark.parametrize(("text", "messages"), [
    ("title = \"x\"\nsummary = nope\n", ["not valid TOML", "line 2"]),
    ('title = "x"', ["line 1: a lesson needs 1 to 20 [[steps]]"]),
    (GOOD.replace('lock = ["learning_rate"]', 'lock = ["learning_rat"]'),
     ["line 7: step 1: lock names 'learning_rat', not controls"]),
    (GOOD.replace("learning_rate = 0.03", "learning_rate = 0.05"),
     ["line 6: step 1: preset learning_rate = 0.05 is not one of the choices",
      "line 7: step 1: 'learning_rate' is locked or hidden but the preset gives it no value"]),
    (GOOD.replace('goal = "test_accuracy >= 0.9 and n_params <= 500"',
                  'goal = "__import__(\'os\').system(\'id\')"'),
     ["line 9: step 1: a goal is comparisons"]),
    (GOOD.replace('goal = "test_accuracy >= 0.9 and n_params <= 500"', 'goal = "speed > 3"'),
     ["line 9: step 1: the goal uses 'speed'"]),
    (GOOD.replace('prompt = "Train it."', "prompt = 3"),
     ["line 5: step 1: prompt must be text"]),
    (GOOD + "\n[[steps]]\ntitle = 'Two'\nprompt = 'x'\ncolour = 'red'\n",
     ["line 14: step 2: unknown field 'colour'"]),
    (GOOD.replace("units_1 = 16", "units_1 = 1000"),
     ["line 6: step 1: preset units_1 = 1000 is outside 1..256"]),
])
def test_bad_lessons_get_line_level_messages(text, messages):
    with pytest.raises(LessonError) as info:
        parse_lesson(text.encode())
    for message in messages:
        assert any(message in p for p in info.value.problems), info.value.problems


def test_binary_or_huge_files_are_refused():
    with pytest.raises(LessonError, match="not UTF-8"):
        parse_lesson(b"\xff\xfe\x00bad")
    with pytest.raises(LessonError, match="at most"):
        parse_lesson(b"#" * 100_000)


@pytest.mark.parametrize(("goal", "numbers", "met"), [
    ("test_accuracy >= 0.95 and n_params <= 500", {"test_accuracy": 0.96, "n_params": 400},
     True),
    ("test_accuracy >= 0.95 and n_params <= 500", {"test_accuracy": 0.96, "n_params": 600},
     False),
    ("test_accuracy >= 0.9 or epochs < 10", {"test_accuracy": 0.5, "epochs": 5}, True),
    ("0.8 <= test_accuracy < 0.9", {"test_accuracy": 0.85}, True),
    ("test_accuracy >= 0.5", {"test_accuracy": None}, False),  # no evaluation: not met
])
def test_goals(goal, numbers, met):
    assert Goal(goal).met(numbers) is met


@pytest.mark.parametrize("bad", ["test_accuracy.real > 1", "len(x) > 1", "1 + 2",
                                 "test_accuracy >= 'a'", "not test_accuracy", "lambda: 1",
                                 "test_accuracy in [1]"])
def test_goals_accept_only_comparisons_of_run_numbers(bad):
    with pytest.raises(ValueError):
        Goal(bad)


def test_controls_are_the_sidebar_keys():
    assert {"learning_rate", "dataset", "n_layers", "units_1", "units_6"} <= set(CONTROLS)
