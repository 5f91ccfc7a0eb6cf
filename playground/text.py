"""User text shown on a page: escaped, so it reads as typed and never renders as markup.

File names, column headers, class labels, run names and notes come from users
(or from an uploaded file or bundle). Streamlit renders the text of
``st.markdown``, ``st.info``, ``st.error``, captions and labels as Markdown, so
``[click](http://evil)`` would become a link and ``![x](...)`` an image;
Plotly renders ``<a href>`` and ``<b>`` in hover text and titles. Everything
that carries user text goes through :func:`md` (Markdown) or :func:`plain_html`
(Plotly) before it is shown.
"""

from __future__ import annotations

import html
import re

__all__ = ["md", "plain_html"]

# Every ASCII punctuation character may be backslash-escaped in CommonMark; doing
# so for all of them also defuses Streamlit's own :icon:, :color[...] and $maths$.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&@])")


def md(text: object) -> str:
    """``text`` as Markdown that displays exactly these characters."""
    flat = " ".join(str(text).splitlines())  # no headings or lists from line breaks
    return _MD_SPECIAL.sub(r"\\\1", flat)


def plain_html(text: object) -> str:
    """``text`` for Plotly titles, tick labels and hover text (HTML-escaped)."""
    return html.escape(str(text), quote=True)
