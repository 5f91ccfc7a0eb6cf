"""The classroom in headless Chromium: a teacher, three students, a lesson with a lock.

One server, one SQLite store. The teacher starts a class with the lesson "A
learning rate too high" (step 1 locks the learning rate at 1 and the
optimizer), three students join by the link and train; the board shows them,
the leaderboard orders them, a student cannot open the board, a crafted link
cannot train with the locked control changed, and finishing a step moves the
student on.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from playground.classes import board
from playground.store import RunStore, database_url
from tests.servers import start_app, stop
from tests.test_runs_browser import idle, no_traceback

pytestmark = pytest.mark.browser

LESSON = "2_learning_rate_too_high"


def goto(page: Page, url: str) -> None:
    page.goto(url)
    idle(page)
    # a direct link to a page runs app.py (sidebar, workspace), no "Page not found"
    expect(page.get_by_role("dialog")).to_have_count(0)


def start_class(teacher: Page, url: str) -> tuple[str, str]:
    goto(teacher, f"{url}/classroom")
    teacher.locator(".st-key-class_title input").fill("Tuesday class")
    teacher.locator(".st-key-lesson_choice").click()
    teacher.get_by_role("option", name="A learning rate too high").click()
    idle(teacher)
    teacher.get_by_role("button", name="Start a class").click()
    expect(teacher.locator(".st-key-join_link a")).to_be_visible(timeout=20_000)
    join = teacher.locator(".st-key-join_link a").get_attribute("href")
    link = teacher.locator(".st-key-teacher_link code").inner_text().strip()
    return join, link


def join(page: Page, link: str, name: str) -> None:
    goto(page, link)
    page.locator(".st-key-display_name input").fill(name)
    page.locator(".st-key-display_name input").press("Enter")
    idle(page)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_text(f"as {name}").first).to_be_visible(timeout=20_000)


def train_step(page: Page, url: str, query: str, done_text: str) -> None:
    page.goto(f"{url}/?{query}" if query else f"{url}/")
    idle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_test_id("stAlert").filter(has_text=done_text).first).to_be_visible(
        timeout=90_000)


def test_a_class_with_a_lesson(browser, tmp_path, artifacts):
    env = {"NNPG_DATA_DIR": str(tmp_path / "store")}
    proc, url = start_app(env=env)
    contexts = []

    def context():
        ctx = browser.new_context(viewport={"width": 1920, "height": 1080})
        contexts.append(ctx)
        return ctx.new_page()
    try:
        teacher = context()
        join_link, teacher_link = start_class(teacher, url)
        assert re.search(r"/classroom\?join=[2-9B-DF-HJ-NP-TV-Z]{6}$", join_link)
        assert "teacher=" in teacher_link
        class_id = parse_qs(urlsplit(teacher_link).query)["class"][0]
        teacher.screenshot(path=artifacts / "classroom_started.png")

        students = {}
        for name in ("Ada", "Bea", "Cy"):
            students[name] = context()
            join(students[name], join_link, name)
        # the same name twice in one class is refused
        dup = context()
        goto(dup, join_link)
        dup.locator(".st-key-display_name input").fill("ada")
        dup.get_by_role("button", name="Join").click()
        expect(dup.get_by_text("already called")).to_be_visible(timeout=10_000)

        ada = students["Ada"]
        # step 1 of the lesson: the learning rate is locked (disabled, with a lock)
        ada.goto(f"{url}/")
        idle(ada)
        expect(ada.locator(".st-key-lesson_panel")).to_contain_text("Step 1 of 2")
        lr = ada.locator(".st-key-learning_rate").get_by_role("slider")
        expect(lr).to_be_disabled()
        expect(lr).to_have_attribute("aria-valuetext", "1")
        ada.screenshot(path=artifacts / "classroom_student_locked.png")
        # a crafted link with another learning rate: shown, but the server refuses it
        ada.goto(f"{url}/?learning_rate=0.1")
        idle(ada)
        ada.get_by_role("button", name="Train", exact=True).click()
        idle(ada)
        expect(ada.get_by_test_id("stAlert").filter(has_text="fixes learning rate at 1.0")
               ).to_be_visible(timeout=10_000)

        # a student with the join link cannot open the board
        peek = context()
        goto(peek, f"{url}/classroom?class={class_id}")
        expect(peek.get_by_text("This teacher link is not valid")).to_be_visible()
        expect(peek.locator(".st-key-class_board")).to_have_count(0)

        # step 1 (no goal): each student trains once with the lesson's settings -> step 2
        for page in students.values():
            page.goto(f"{url}/")  # the lesson's preset (learning rate 1)
            idle(page)
            page.get_by_role("button", name="Train", exact=True).click()
        for page in students.values():
            expect(page.get_by_test_id("stAlert").filter(
                has_text=re.compile("Trained|diverged|Training diverged")).first
            ).to_be_visible(timeout=90_000)
            page.reload()
            idle(page)
            expect(page.locator(".st-key-lesson_panel")).to_contain_text("Step 2 of 2",
                                                                          timeout=15_000)
        # step 2: each student picks a learning rate (the goal: 95 % test accuracy)
        rates = {"Ada": "0.3", "Bea": "0.1", "Cy": "0.03"}
        units = {"Ada": "16", "Bea": "32", "Cy": "64"}  # different sizes: no ties
        finished = {}
        for name, page in students.items():
            page.goto(f"{url}/?learning_rate={rates[name]}&units_1={units[name]}")
            idle(page)
            page.get_by_role("button", name="Train", exact=True).click()
        for name, page in students.items():
            expect(page.get_by_test_id("stAlert").filter(has_text="Trained 200 epochs").first
                   ).to_be_visible(timeout=90_000)
            finished[name] = time.monotonic()
        # the board: three rows, the leaderboard in the right order, within 5 s
        goto(teacher, teacher_link)
        board_el = teacher.locator(".st-key-class_board")
        expect(board_el).to_be_visible(timeout=10_000)
        t0 = time.monotonic()
        for name in students:
            expect(board_el).to_contain_text(name, timeout=5_000)
        leaderboard = teacher.locator(".st-key-leaderboard tbody tr")
        expect(leaderboard).to_have_count(3, timeout=5_000)
        assert time.monotonic() - t0 < 5.0
        # the right order: best test accuracy first, ties to fewer parameters (from the store)
        store = RunStore(database_url(tmp_path / "store"), migrate=False)
        best = {}
        for row in board(store, class_id):
            best[row.name] = (-row.best_accuracy, row.best_params)
        store.close()
        expected = sorted(best, key=best.get)
        shown = [r.locator("td").first.inner_text().strip() for r in leaderboard.all()]
        assert shown == expected, (shown, best)
        # click a student's row (the grid's row marker): that run goes into the spotlight
        first = next(iter(best))  # the board lists students in board()'s order
        grid = teacher.locator(".st-key-board_table")
        box = grid.bounding_box()
        teacher.mouse.click(box["x"] + 14, box["y"] + 35 + 17)  # header 35 px, rows 35 px
        spot = teacher.locator(".st-key-spotlight")
        expect(spot).to_contain_text(f"Spotlight: {first}", timeout=10_000)
        expect(spot.locator(".js-plotly-plot")).to_have_count(2, timeout=10_000)  # curve, CM
        no_traceback(teacher)
        teacher.screenshot(path=artifacts / "classroom_board.png", full_page=True)
        teacher.get_by_text("Presenter mode").click()
        idle(teacher)
        # the projector never shows the teacher's secret link
        expect(teacher.locator(".st-key-teacher_link")).to_have_count(0)
        expect(teacher.get_by_text("teacher=")).to_have_count(0)
        teacher.screenshot(path=artifacts / "classroom_board_presenter.png", full_page=True)
        for page in students.values():
            no_traceback(page)
    finally:
        for ctx in contexts:
            ctx.close()
        stop(proc)
