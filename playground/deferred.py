"""Parts of a page drawn once the browser has painted the rest (a reload's first run).

A reload of a training page mounts everything at once: the sidebar, the progress
panel with the loss and accuracy curves, and the evaluation panel (confusion
matrix, per-class scores, a table, images, gradient norms). The evaluation panel
is about a third of the browser's work, and nothing of it is what the student
waits for. :func:`after_paint` draws a hidden element in its place instead; when
the browser is idle after painting the page, the element triggers a rerun of its
fragment, which draws the real contents.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["after_paint"]

# Not isolated, no height: the element hides its own container at once.
_JS = """
export default function ({ parentElement, setTriggerValue }) {
  const box = parentElement && parentElement.closest
    && parentElement.closest('[data-testid="stElementContainer"]');
  if (box) box.style.display = 'none';
  const release = () => setTriggerValue('painted', true);
  if (window.requestIdleCallback) window.requestIdleCallback(release, { timeout: 1000 });
  else setTimeout(release, 300);
}
"""
_component = st.components.v2.component("nnpg_after_paint", js=_JS, isolate_styles=False)


def _painted() -> None:
    """Nothing to do: the rerun the trigger causes is the point."""


def after_paint(key: str) -> None:
    """Rerun the calling fragment once the browser has painted the page."""
    _component(key=key, data={}, on_painted_change=_painted)
