"""The chart and page toolkit shared by every HTML report and the web UI.

Charts (:mod:`modelyard.ui._charts`): :func:`line_chart`, :func:`bar_chart`, :func:`histogram`,
:func:`parallel_coordinates` (:mod:`modelyard.ui._parallel`), pure Python returning SVG strings;
:func:`lttb` downsamples a long series for drawing.
Pages (:mod:`modelyard.ui._pages`): :func:`render_page` renders a Jinja2
template of ``modelyard/ui/templates`` (the page shell ``base.html.j2`` and its CSS, one
template per report), autoescaped; Jinja2 is imported on first use.
"""

from modelyard.ui._charts import (
    PALETTE,
    bar_chart,
    esc,
    fmt_num,
    histogram,
    line_chart,
    nice_ticks,
    time_ticks,
)
from modelyard.ui._lttb import lttb
from modelyard.ui._pages import render_page
from modelyard.ui._parallel import parallel_coordinates

__all__ = [
    "PALETTE",
    "bar_chart",
    "esc",
    "fmt_num",
    "histogram",
    "line_chart",
    "lttb",
    "nice_ticks",
    "parallel_coordinates",
    "render_page",
    "time_ticks",
]
