"""The model card's own bar chart: long labels shortened to fit (full name in the tooltip), fixed 0-1 scale."""

from __future__ import annotations

import re

from modelyard.registry._card import bar_chart_svg


def test_long_labels_are_shortened_to_the_label_column_and_named_in_full_in_the_tooltip() -> None:
    name = "plan=enterprise-annual-prepaid-with-a-very-long-name-indeed"
    svg = bar_chart_svg({name: 0.5, "plan=pro": 0.25}, title="t", width=640)
    labels = re.findall(r'<text x="(\d+)"[^>]*text-anchor="end">([^<]*)</text>', svg)
    (x, shown), (_, short) = labels
    assert shown.endswith("…") and name.startswith(shown[:-1]) and len(shown) * 7.2 <= int(x)  # fits left of the bars
    assert short == "plan=pro"
    assert f"<title>{name}: 0.5</title>" in svg


def test_peak_fixes_the_scale() -> None:
    widths = [float(w) for w in re.findall(r'<rect x="\d+" y="[\d.]+" width="([\d.]+)"', bar_chart_svg({"auc": 0.5}, peak=1.0))]
    full = [float(w) for w in re.findall(r'<rect x="\d+" y="[\d.]+" width="([\d.]+)"', bar_chart_svg({"auc": 1.0}, peak=1.0))]
    assert widths[0] * 2 == full[0]
