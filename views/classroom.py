"""Classroom: start a class, join one, follow a lesson; the teacher's live board."""

from __future__ import annotations

import io
import time
import urllib.parse
from collections import defaultdict, deque

import pandas as pd
import plotly.graph_objects as go
import segno
import streamlit as st

from playground.classes import (
    BoardRow,
    ClassError,
    ClassRow,
    board,
    create_class,
    end_class,
    find_class,
    join_class,
    leave_class,
    loss_curves,
    membership,
    set_lesson,
    teacher_class,
)
from playground.config import RunConfig
from playground.guards import callback, guarded
from playground.lesson_state import forget_membership, shipped_lessons
from playground.lessons import Lesson, LessonError, parse_lesson
from playground.resources import get_settings, get_store
from playground.session import Key
from playground.text import md, plain_html
from playground.workspace import absolute_link, known_workspace

#: Seconds between refreshes of the teacher's board.
BOARD_SECONDS = 2.0
#: Join attempts one address may make per minute (guessing codes is slow).
JOINS_PER_MINUTE = 20


@st.cache_resource(show_spinner=False)
def _join_attempts() -> defaultdict[str, deque]:
    return defaultdict(deque)


def _rate_limited() -> bool:
    """True if this address tried to join too often in the last minute."""
    address = st.context.ip_address or "?"
    attempts = _join_attempts()[address]
    now = time.monotonic()
    while attempts and now - attempts[0] > 60:
        attempts.popleft()
    attempts.append(now)
    return len(attempts) > JOINS_PER_MINUTE


def join_url(code: str) -> str:
    return absolute_link(f"/classroom?join={code}")


def teacher_url(cls: ClassRow, token: str) -> str:
    return absolute_link(f"/classroom?class={cls.id}&teacher={token}")


def qr_png(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=12, border=2)
    return buf.getvalue()


# ---- callbacks ------------------------------------------------------------------------
@callback
def _on_create() -> None:
    store = get_store()
    ss = st.session_state
    lesson = _chosen_lesson()
    title = ss.get("class_title", "").strip() or "My class"
    cls, token = create_class(store, title, lesson, get_settings().class_days)
    ss["_teacher"] = (cls.id, token)
    st.query_params.update({"class": cls.id, "teacher": token})


@callback
def _on_join() -> None:
    ss = st.session_state
    ss.pop(Key.JOIN_ERROR, None)
    store, ws = get_store(), known_workspace()
    if store is None or ws is None:
        ss[Key.JOIN_ERROR] = "The run store is unavailable; try again in a moment."
        return
    if _rate_limited():
        ss[Key.JOIN_ERROR] = "Too many attempts from your network: wait a minute, then try again."
        return
    cls = find_class(store, code=ss.get("join_code", ""))
    if cls is None or not cls.open:
        ss[Key.JOIN_ERROR] = ("No open class has that code. Check the code on the projector "
                            "(letters and digits, no O or I).")
        return
    try:
        member = join_class(store, cls, ws, ss.get("display_name", ""))
    except ClassError as exc:
        ss[Key.JOIN_ERROR] = str(exc)
        return
    forget_membership()
    ss.pop(Key.LESSON_APPLIED, None)  # the class's lesson presets the controls
    if "join" in st.query_params:
        del st.query_params["join"]
    ss[Key.CLASS_NOTICE] = f"You joined {cls.title} as {member.display_name}."


@callback
def _on_leave(class_id: str) -> None:
    store, ws = get_store(), known_workspace()
    if store is not None and ws is not None:
        leave_class(store, class_id, ws)
    forget_membership()
    st.session_state[Key.CLASS_NOTICE] = "You left the class. Your runs stay in your workspace."


@callback
def _on_set_lesson(class_id: str) -> None:
    lesson = _chosen_lesson()
    set_lesson(get_store(), class_id, lesson)
    st.session_state[Key.CLASS_NOTICE] = (f"The class now follows \u201c{lesson.title}\u201d."
                                        if lesson else "The class has no lesson now.")


@callback
def _on_end(class_id: str) -> None:
    end_class(get_store(), class_id)
    st.session_state[Key.CLASS_NOTICE] = ("The class has ended. Students keep their runs; the "
                                        "join link no longer works.")


def _chosen_lesson() -> Lesson | None:
    """The lesson picked in the selectbox, or the uploaded lesson file."""
    ss = st.session_state
    upload = ss.get("lesson_file")
    if upload is not None:
        return parse_lesson(upload.getvalue())  # validated before: see lesson_picker
    name = ss.get("lesson_choice")
    return shipped_lessons().get(name) if name else None


# ---- pieces --------------------------------------------------------------------------
def lesson_picker() -> bool:
    """Choose a shipped lesson or upload one; False if the upload is invalid."""
    lessons = shipped_lessons()
    st.selectbox("Lesson", [None, *lessons], key="lesson_choice",
                 format_func=lambda k: "No lesson: explore freely" if k is None
                 else lessons[k].title)
    upload = st.file_uploader("…or upload your own lesson (TOML)", type=["toml", "txt"],
                              key="lesson_file",
                              help="The README's 'Writing a lesson' section has the format.")
    if upload is not None:
        try:
            lesson = parse_lesson(upload.getvalue())
        except LessonError as exc:
            st.error("This lesson file cannot be used:\n\n" +
                     "\n".join(f"- {md(p)}" for p in exc.problems))
            return False
        st.success(f"Lesson file OK: {md(lesson.title)}, {len(lesson.steps)} steps.")
    return True


def start_class_form() -> None:
    with st.container(border=True):
        st.subheader("Start a class", anchor=False)
        st.text_input("Class name", key="class_title", max_chars=80,
                      placeholder="e.g. Year 11, Tuesday")
        ok = lesson_picker()
        st.button("Start a class", key="create_class", type="primary", on_click=_on_create,
                  disabled=not ok, icon=":material/co_present:")


def join_form() -> None:
    ss = st.session_state
    if "join" in st.query_params and "join_code" not in ss:
        ss["join_code"] = st.query_params["join"]
    with st.container(border=True):
        st.subheader("Join a class", anchor=False)
        c1, c2 = st.columns(2)
        c1.text_input("Class code", key="join_code", max_chars=12, placeholder="e.g. K7PQ3M")
        c2.text_input("Your name", key="display_name", max_chars=24,
                      placeholder="as your teacher should see it")
        st.button("Join", key="join_class", type="primary", on_click=_on_join,
                  icon=":material/login:")
        error = ss.get(Key.JOIN_ERROR)
        if error:
            st.error(md(error))


def leaderboard_frame(rows: list) -> pd.DataFrame:
    """Best test accuracy first; ties go to the smaller network (fewer parameters)."""
    scored = sorted((r for r in rows if r.best_accuracy is not None),
                    key=lambda r: (-r.best_accuracy, r.best_params))
    frame = pd.DataFrame([{"name": r.name, "best test accuracy": f"{r.best_accuracy:.1%}",
                           "parameters": f"{r.best_params:,}"} for r in scored])
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="#")
    return frame


def student_view(cls: ClassRow) -> None:
    """A student in a class: who they are, the leaderboard (names and scores only)."""
    store, ws = get_store(), known_workspace()
    found = membership(store, ws)
    if found is None:
        return
    _, me = found
    st.success(f"You are in **{md(cls.title)}** as **{md(me.display_name)}**. Train on the "
               "Playground page: your runs appear on your teacher's board.",
               icon=":material/groups:")
    if cls.lesson is not None:
        st.caption(f"Lesson: {md(cls.lesson.title)} · you are on step "
                   f"{min(me.step + 1, len(cls.lesson.steps))} of {len(cls.lesson.steps)}")
    st.button("Leave the class", key="leave_class", on_click=_on_leave, args=(cls.id,),
              icon=":material/logout:")
    st.subheader("Leaderboard", anchor=False)
    frame = leaderboard_frame(board(store, cls.id))
    if frame.empty:
        st.caption("No finished runs yet.")
    else:
        with st.container(key="student_leaderboard"):
            st.table(frame)


def differs(config: dict | None, lesson: Lesson | None, step: int) -> str:
    """The settings of a run that differ from the lesson step's preset."""
    if config is None or lesson is None or not lesson.steps:
        return ""
    preset = lesson.steps[min(step, len(lesson.steps) - 1)].preset
    cfg = RunConfig.from_dict(config)
    out = []
    for key, value in preset.items():
        mine = cfg.units[int(key[6:]) - 1] if key.startswith("units_") else getattr(cfg, key)
        if mine != value:
            out.append(f"{key} {mine} (preset {value})")
    return "; ".join(out)


@st.cache_data(show_spinner=False, max_entries=512)
def _curve(run_id: str, epochs_done: int) -> tuple[list, list] | None:
    """One run's thinned loss curve, read once per epoch count: a class of 30 on the
    board re-reads only the runs that trained since the last refresh."""
    return loss_curves(get_store(), [run_id]).get(run_id)


def curves_figure(rows: list, curves: dict) -> go.Figure:
    fig = go.Figure()
    for r in rows:
        if r.run_id in curves:
            xs, ys = curves[r.run_id]
            fig.add_scatter(x=xs, y=ys, mode="lines", name=plain_html(r.name),
                            hovertemplate="%{fullData.name}: epoch %{x}, loss %{y:.4f}"
                                          "<extra></extra>")
    fig.update_layout(title="Training loss of everyone's latest run", height=380,
                      xaxis_title="epoch", yaxis_title="loss", uirevision="board",
                      margin={"l": 50, "r": 10, "t": 50, "b": 40}, legend={"title": None})
    return fig


def spotlight(store, row) -> None:
    """One student's latest run, big, for the projector."""
    from playground import charts

    run = store.get_run(row.run_id)
    if run is None:
        return
    records = store.records(run.id)
    evaluation = store.evaluation(run.id)
    with st.container(key="spotlight", border=True):
        acc = f"{run.test_accuracy:.1%}" if run.test_accuracy is not None else "-"
        st.subheader(f"Spotlight: {md(row.name)} · {run.status} · test accuracy {acc}",
                     anchor=False)
        cfg = RunConfig.from_dict(run.config)
        st.caption(f"{md(cfg.dataset)} · hidden {cfg.architecture} · {cfg.activation} · "
                   f"{cfg.optimizer} lr {cfg.learning_rate:g} · {run.n_params:,} parameters")
        if records:
            st.plotly_chart(charts.compare_figure([(row.name, records)], "loss",
                                                  "val"), key="spotlight_curve")
        if evaluation is not None:
            cm = evaluation.confusion_matrix
            labels = [plain_html(c) for c in run.classes]
            fig = go.Figure(go.Heatmap(z=cm, x=labels, y=labels, colorscale="Blues",
                                       text=cm, texttemplate="%{text}", showscale=False))
            fig.update_layout(title="Confusion matrix (test set)", height=420,
                              xaxis_title="predicted", yaxis_title="true",
                              yaxis={"autorange": "reversed"})
            st.plotly_chart(fig, key="spotlight_cm")
        st.link_button("Open the full run", f"/?run={run.id}", icon=":material/open_in_new:")


def teacher_board(cls: ClassRow, token: str) -> None:
    """The teacher's view of a class: how to join, the lesson, and the live board."""
    store = get_store()
    presenter = st.session_state.get("presenter", False)
    if presenter:
        _presenter_style()
    st.title(f"{cls.title}", anchor=False)
    _join_panel(cls, token, presenter)
    with st.expander("Lesson" + (f": {cls.lesson.title}" if cls.lesson else " (none)")):
        if lesson_picker():
            st.button("Use this lesson for the class", key="set_lesson",
                      on_click=_on_set_lesson, args=(cls.id,))

    @st.fragment(run_every=BOARD_SECONDS)
    def live() -> None:
        fresh = teacher_class(store, cls.id, token) or cls
        rows = board(store, cls.id)
        with st.container(key="class_board"):
            st.subheader(f"Students ({len(rows)})", anchor=False)
            if not rows:
                st.info(f"Nobody has joined yet. Students open the join link or type the code "
                        f"**{cls.code}** on the Classroom page.")
                return
            picked = _students_table(rows, fresh.lesson)
            left, right = st.columns(2)
            with left:
                _leaderboard(rows)
            with right:
                curves = {r.run_id: _curve(r.run_id, r.epochs_done) for r in rows if r.run_id}
                curves = {k: v for k, v in curves.items() if v is not None}
                st.plotly_chart(curves_figure(rows, curves), key="class_curves")
            if picked is not None and picked.run_id:
                spotlight(store, picked)

    live()


def _presenter_style() -> None:
    # Static CSS (no user text): larger type, and the teacher's own controls
    # hidden, for the projector.
    st.html("<style>.stApp [data-testid='stMarkdownContainer'] p, .stApp td,"
            ".stApp th {font-size: 1.35rem !important} .stApp h1 {font-size: 3rem}"
            ".st-key-join_code_big [data-testid='stMarkdownContainer'] p "
            "{font-size: 3.2rem !important}"
            "section[data-testid='stSidebar'] {display: none}</style>")


def _join_panel(cls: ClassRow, token: str, presenter: bool) -> None:
    """Join code, link and QR code; the teacher link and the class's controls."""
    link = join_url(cls.code)
    c1, c2 = st.columns([3, 1])
    with c1:
        with st.container(key="join_code_big"):
            st.markdown(f"Join code: **{' '.join(cls.code)}**")
        with st.container(key="join_link"):
            st.markdown(f"Students open [{link}]({link}) or type the code on the "
                        "Classroom page.")
        if not presenter:  # never put the teacher's secret on the projector
            with st.container(key="teacher_link"):
                st.caption("Teacher link: keep it private (it opens this board). Bookmark "
                           "it to come back to the board later.")
                st.code(teacher_url(cls, token), language=None)
        c = st.columns(3)
        c[0].toggle("Presenter mode", key="presenter", help="Larger type for the projector")
        if not cls.open:
            st.warning("This class has ended or expired: students can no longer join.")
        else:
            c[2].button("End the class", key="end_class", on_click=_on_end, args=(cls.id,),
                        icon=":material/event_busy:",
                        help="Students keep their runs (detached from the class); the join "
                             "link stops working")
    c2.image(qr_png(link), caption="Scan to join", width=220)


def _students_table(rows: list[BoardRow], lesson: Lesson | None) -> BoardRow | None:
    """One row per student; returns the student the teacher clicked, if any."""
    n_steps = len(lesson.steps) if lesson else 0
    table = pd.DataFrame([{
        "name": r.name,
        "step": (f"{min(r.step + 1, n_steps)}/{n_steps}" if r.step < n_steps
                 else "done") if n_steps else "-",
        "status": r.status or "no run yet",
        "progress": r.epochs_done / r.epochs_planned if r.epochs_planned else 0.0,
        "best test accuracy": r.best_accuracy, "parameters": r.best_params,
        "runs": r.runs,
        "differs from the preset": differs(r.latest_config, lesson, r.step),
    } for r in rows])
    event = st.dataframe(
        table, hide_index=True, key="board_table", on_select="rerun",
        selection_mode="single-row", column_config={
            "progress": st.column_config.ProgressColumn(min_value=0, max_value=1),
            "best test accuracy": st.column_config.NumberColumn(format="percent")})
    st.caption("Click a row to put that student's run in the spotlight.")
    picked = event.selection.rows if event is not None else []
    return rows[picked[0]] if picked and picked[0] < len(rows) else None


def _leaderboard(rows: list[BoardRow]) -> None:
    st.subheader("Leaderboard", anchor=False)
    st.caption("Best test accuracy; ties go to the smaller network.")
    frame = leaderboard_frame(rows)
    with st.container(key="leaderboard"):
        if frame.empty:
            st.caption("No finished runs yet.")
        else:
            st.table(frame)  # plain text: large and readable on a projector


@guarded
def page() -> None:
    ss = st.session_state
    store = get_store()
    if store is None:
        st.warning("The run store is unavailable, and classes live there. Try again in a "
                   "moment.", icon=":material/cloud_off:")
        return
    notice = ss.pop(Key.CLASS_NOTICE, None)
    if notice:
        st.success(md(notice), icon=":material/check:")
    class_id, token = st.query_params.get("class"), st.query_params.get("teacher")
    if class_id or token:
        cls = teacher_class(store, class_id or "", token or "")
        if cls is None:
            st.error("This teacher link is not valid: the board needs the whole link the "
                     "class was started with.", icon=":material/lock:")
            return
        teacher_board(cls, token)
        return
    st.title("Classroom", anchor=False)
    ws = known_workspace()
    found = membership(store, ws) if ws else None
    if found is not None:
        student_view(found[0])
    else:
        join_form()
    start_class_form()
    with st.expander("Open a lesson on your own", icon=":material/school:"):
        for name, lesson in shipped_lessons().items():
            st.markdown(f"[{md(lesson.title)}](/?lesson={urllib.parse.quote(name)}) — "
                        f"{md(lesson.summary)}")


page()
