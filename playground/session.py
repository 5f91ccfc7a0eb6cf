"""Session state: every key the app keeps per browser session, in one place.

The sidebar widgets' keys are the :class:`~playground.config.RunConfig` field
names (``dataset``, ``learning_rate``, ``units_1`` ...: see
``config.WIDGET_FIELDS``) and the pages' own widgets are keyed where they are
drawn. Everything else a session remembers is named here. Session state holds
only what is on screen now (DESIGN.md); runs, classes and workspaces live in
the run store.
"""

from __future__ import annotations

__all__ = ["Key"]


class Key:
    """Names of the app's own session-state entries (not widgets)."""

    # the run on screen (playground.run_view)
    VIEW = "view"  # RunView of the run on screen
    DRAWN = "_drawn"  # (run id, status) the last full page run drew
    SIDEBAR_STATUS = "_sidebar_status"  # the status the sidebar was drawn for
    PAUSE_REQUESTED = "pause_requested"  # Pause pressed, the run not paused yet
    EVAL_DEFERRED = "_eval_deferred"  # run whose evaluation panel waits for the first paint
    UNSAVED_RUNS = "_unsaved_runs"  # runs numbered while the store was unavailable
    # messages shown once on the next page run
    TRAIN_ERROR = "train_error"  # why the last action was refused
    RUN_NOTICE = "run_notice"  # runs dropped by retention, goal reached...
    STORE_PROBLEM = "_store_problem"  # the run store could not be opened
    COMPARE_NOTICE = "compare_notice"
    BUNDLE_ERROR = "bundle_error"
    CLASS_NOTICE = "class_notice"
    JOIN_ERROR = "join_error"
    # replayed clicks (playground.callbacks)
    RUNS_COMPLETED = "_runs_completed"  # full script runs finished in this session
    TRAIN_AT_RUN = "_train_at_run"  # RUNS_COMPLETED when Train was last handled
    # the workspace (playground.workspace)
    WORKSPACE_TOKEN = "_workspace_token"
    WORKSPACE_ID = "_workspace_id"
    RECOVERED = "_recovered"
    RECOVER_ERROR = "_recover_error"
    # lessons and classes (playground.lesson_state, views/classroom.py)
    MEMBERSHIP = "_membership"  # (looked up at, (class, member) | None)
    LESSON_APPLIED = "_lesson_applied"  # (lesson, step) whose preset was applied
    HIDDEN_VALUES = "_hidden_values"  # values of the controls the step hides
    GOAL_CHECKED = "_goal_checked"  # the run whose goal was checked last
    GO_PLAYGROUND = "_go_playground"  # Compare's "Open" asked for the Playground
