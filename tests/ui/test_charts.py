"""The chart toolkit (modelyard.ui): escaping, scales, ticks, labels that fit and never overlap."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from modelyard.ui import bar_chart, esc, fmt_num, histogram, line_chart, nice_ticks, render_page, time_ticks

NS = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script>&\''


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{NS}text")]


def test_every_chart_escapes_data_text_and_stays_well_formed_xml() -> None:
    charts = [
        line_chart([(EVIL, [(0, 1.0), (1, 2.0)]), ("b", [(0, 2.0), (1, 1.0)])], title=EVIL, threshold=1.5),
        bar_chart([EVIL, "b"], [(EVIL, [1.0, 2.0])], title=EVIL),
        bar_chart([EVIL, "b"], [("reference", [1, 2]), (EVIL, [2, 1])], shares=True, title=EVIL),
        histogram([0, 1, 2], [(EVIL, [1, 3]), ("cur", [2, 2])], title=EVIL),
    ]
    for svg in charts:
        assert "<script" not in svg and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#x27;" in svg
        root = ET.fromstring(svg)  # parses: every attribute and text escaped
        assert root.get("aria-label") == EVIL
    assert esc('a"b') == "a&quot;b"


def test_histogram_overlays_shares_and_says_when_empty() -> None:
    svg = histogram([0, 1, 2], [("ref <a>", [1, 3]), ("cur", [2, 2])], title="x & y")
    assert (
        svg.startswith("<svg") and "ref &lt;a&gt;" in svg and "x &amp; y" in svg and svg.count("<rect") == 4
    )
    assert "<title>ref &lt;a&gt;: [1, 2) 3 (75.0%)</title>" in svg
    assert "no numeric values" in histogram([], [])


def test_long_bar_labels_are_shortened_to_the_label_column_and_named_in_full_in_the_tooltip() -> None:
    name = "plan=enterprise-annual-prepaid-with-a-very-long-name-indeed"
    svg = bar_chart([name, "plan=pro"], [("auc", [0.5, 0.25])], title="t", width=640)
    labels = re.findall(r'<text x="(\d+)"[^>]*text-anchor="end">([^<]*)</text>', svg)
    (x, shown), (_, short) = labels
    assert (
        shown.endswith("…") and name.startswith(shown[:-1]) and len(shown) * 7.2 <= int(x)
    )  # fits left of the bars
    assert short == "plan=pro"
    assert f"<title>{name}: 0.5</title>" in svg


def test_a_fixed_scale_and_value_labels_that_fit() -> None:
    def widths(v: float) -> list[float]:
        return [
            float(w)
            for w in re.findall(
                r'<rect x="\d+" y="[\d.]+" width="([\d.]+)"', bar_chart(["auc"], [("m", [v])], scale=1.0)
            )
        ]

    assert widths(0.5)[0] * 2 == widths(1.0)[0]
    # the value label column is kept free: the largest bar's label ends inside the chart
    svg = bar_chart(["a", "b"], [("m", [123456.789, 3.0])], width=300)
    bar_end = max(
        float(x) + float(w) for x, w in re.findall(r'<rect x="(\d+)" y="[\d.]+" width="([\d.]+)"', svg)
    )
    label = re.search(r'<text x="([\d.]+)"[^>]*>1\.23e\+05</text>', svg)
    assert (
        label
        and float(label.group(1)) >= bar_end
        and float(label.group(1)) + len("1.23e+05") * 12 * 0.6 <= 300
    )
    # non-finite values are left out, negatives drawn in red
    svg = bar_chart(["nan", "neg"], [("m", [float("nan"), -0.5])])
    assert ">nan<" not in svg and 'fill="#cf222e"' in svg
    assert "no values" in bar_chart([], [("m", [])])


def test_grouped_bars_are_shares_of_each_series_with_labels_no_taller_than_the_bars() -> None:
    svg = bar_chart(["a", "b"], [("reference", [1, 3]), ("current", [2, 2])], shares=True)
    assert [t for t in texts(svg) if t.endswith("%")] == ["25.0%", "50.0%", "75.0%", "50.0%"]
    assert "<title>current: b 2 (50.0%)</title>" in svg
    heights = {float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)}
    sizes = {float(s) for s in re.findall(r'font-size="([\d.]+)" fill="#57606a"', svg)}
    assert max(sizes) < min(heights) + 1  # stacked value labels cannot overlap


def test_nice_ticks_and_time_ticks() -> None:
    assert nice_ticks(0.2, 0.9) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 19, 9, min_step=1) == [0, 5, 10, 15, 20]
    assert nice_ticks(3, 3) == [2.6, 2.8, 3.0, 3.2, 3.4]
    assert nice_ticks(-0.3, 0.7) == [-0.5, -0.25, 0, 0.25, 0.5, 0.75]
    hourly, fmt = time_ticks(1_700_000_000, 1_700_000_000 + 4 * 3600, 5)
    assert all(t % 3600 == 0 for t in hourly) and len(hourly) == 4 and fmt == "%m-%d %H:%M"
    months, fmt = time_ticks(1_704_067_200, 1_704_067_200 + 365 * 86400, 6)  # 2024: quarter starts
    assert fmt == "%Y-%m" and [time.strftime(fmt, time.gmtime(t)) for t in months] == [
        "2024-01",
        "2024-04",
        "2024-07",
        "2024-10",
    ]


def test_line_chart_axes_threshold_and_datetime_labels() -> None:
    t0 = 1_700_000_000
    svg = line_chart(
        [("share", [(t0 + i * 3600, s) for i, s in enumerate([0, 0.25, 0.5, 0.75])])],
        title="drift",
        threshold=0.5,
        x_time=True,
        y_zero=True,
    )
    shown = texts(svg)
    assert "threshold 0.5" in shown and shown[1] == "0.0" and "0.8" in shown  # y from 0, nice ticks
    assert [t for t in shown if re.fullmatch(r"\d\d-\d\d \d\d:00", t)]  # whole hours as dates
    assert 'stroke-dasharray="4 3"' in svg and svg.count("<circle") == 4
    steps = line_chart([("loss", [(i, 1 / (i + 1)) for i in range(20)])])
    assert [t for t in texts(steps) if t in ("0", "5", "10", "15")] == ["0", "5", "10", "15"]  # whole steps
    assert "no values" in line_chart([("x", [(0, float("nan"))])])


def test_x_labels_never_overlap_or_leave_the_chart() -> None:
    svg = line_chart([("x", [(i * 1e6, i) for i in range(50)])], width=200)
    boxes = sorted(
        (float(x), float(x) + len(t) * 10 * 0.6)
        for x, t in re.findall(r'<text x="([\d.]+)" y="195"[^>]*>([^<]+)</text>', svg)
    )
    assert boxes and boxes[0][0] >= 0 and boxes[-1][1] <= 200
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(boxes))


def test_fmt_num() -> None:
    assert [fmt_num(v) for v in (0.5, 123456.789, 0.0001234, float("nan"), float("inf"), 0)] == [
        "0.5",
        "1.23e+05",
        "1.23e-04",
        "NaN",
        "∞",
        "0",
    ]


def test_render_page_autoescapes_and_jinja_is_imported_lazily() -> None:
    page = render_page("base.html.j2", title=EVIL)
    assert page.startswith("<!doctype html>") and "<script>" not in page and "&lt;script&gt;" in page
    code = "import sys, modelyard, modelyard.ui; import modelyard.cli; print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelyard", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "jinja2" not in out.stderr
