"""No traceback on the page: guards for drawing code and for widget callbacks."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import streamlit as st

from .session import Key
from .store import StoreUnavailableError

__all__ = ["callback", "guarded"]

log = logging.getLogger("playground")


def guarded(render: Callable) -> Callable:
    """Show a friendly error instead of a traceback if ``render`` fails."""
    @functools.wraps(render)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return render(*args, **kwargs)
        except StoreUnavailableError as exc:
            st.warning(f"{exc} Training still works; stored runs reappear when it is back.",
                       icon=":material/cloud_off:")
            return None
        except Exception:
            log.exception("rendering %s failed", render.__name__)
            st.error("Something went wrong while drawing this part of the page. Your runs "
                     "are safe: change a setting or press Reset to continue.")
            return None
    return wrapper


def callback(action: Callable) -> Callable:
    """A widget callback that can never put a traceback on the page.

    Streamlit runs callbacks before the script; an exception there would be
    shown raw. Store problems and anything unexpected become a message instead.
    """
    @functools.wraps(action)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return action(*args, **kwargs)
        except StoreUnavailableError as exc:
            st.session_state[Key.TRAIN_ERROR] = str(exc)
        except Exception:
            log.exception("%s failed", action.__name__)
            st.session_state[Key.TRAIN_ERROR] = (
                "Something went wrong with that action. Your runs are safe: try again, or "
                "press Reset.")
        return None
    return wrapper
