"""HTML pages from Jinja2 templates: one page shell and stylesheet (``templates/base.html.j2``),
one template per report extending it, and the table macro they share (``templates/macros.html.j2``).

Autoescaping is on: every value from data is escaped by the template. Charts (SVG strings from
:mod:`modelyard.ui._charts`, which escapes their text itself) go in with ``|safe``. Jinja2 is
imported on first use, so ``import modelyard`` and ``yard --help`` stay light.
"""

from __future__ import annotations

import functools
import time
from typing import Any

__all__ = ["render_page", "utc"]


@functools.cache
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("modelyard.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def utc(seconds: float | None = None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    """``seconds`` since the epoch (now when None) as UTC text."""
    return time.strftime(fmt, time.gmtime(time.time() if seconds is None else seconds))


def render_page(template: str, **ctx: Any) -> str:
    """Render ``template`` (a file under ``modelyard/ui/templates``) with ``ctx``, autoescaped.

    Page templates extend ``base.html.j2``, which shows ``title`` in the tab and ``generated`` (default:
    now, UTC) with the modelyard version in the footer.
    """
    from modelyard._version import __version__

    ctx.setdefault("generated", utc())
    ctx.setdefault("version", __version__)
    html: str = _environment().get_template(template).render(**ctx)
    return html
