"""How often the live parts of the pages refresh (seconds)."""

from __future__ import annotations

__all__ = ["EVAL_POLL_SECONDS", "FIRST_RECORD_WAIT", "POLL_SECONDS", "QUEUED_POLL_SECONDS"]

#: Progress and curves while a job trains.
POLL_SECONDS = 0.25
#: A page whose run waits in the queue (or trains on another replica and is
#: read from the store): in a class most pages wait, and each refresh costs the
#: one server process CPU.
QUEUED_POLL_SECONDS = 1.5
#: The evaluation charts while a job trains (they cost the browser far more to
#: redraw than the curves do, and change only when the worker re-evaluates).
EVAL_POLL_SECONDS = 3.0
#: After Train, wait this long at most for the first epoch so the very first
#: redraw already shows a point on the loss curve.
FIRST_RECORD_WAIT = 0.3
