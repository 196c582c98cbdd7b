"""The DAG drawing: a layered layout whose edges never pass behind a box they do not connect."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from modelyard.pipelines._graph import Graph, Node
from modelyard.pipelines._render import dag_layout, dag_svg

NS = {"s": "http://www.w3.org/2000/svg"}


def graph(edges: dict[str, list[str]]) -> Graph:
    """``{node: [upstream, ...]}`` in call order."""
    nodes = {n: Node(n, lambda: None, SimpleNamespace(name=n), {}, list(ups)) for n, ups in edges.items()}
    return Graph("shapes", "exp", {}, nodes)


def _bezier(p0, p1, p2, p3, t):  # type: ignore[no-untyped-def]
    u = 1 - t
    return tuple(
        u**3 * a + 3 * u * u * t * b + 3 * u * t * t * c + t**3 * d
        for a, b, c, d in zip(p0, p1, p2, p3, strict=True)
    )


def sample_path(d: str, steps: int = 40) -> list[tuple[float, float]]:
    """Points along an SVG path made of M, L and C commands (what dag_svg writes)."""
    tokens = re.findall(r"[MLC]|-?\d+(?:\.\d+)?", d)
    pts: list[tuple[float, float]] = []
    cur = (0.0, 0.0)
    i = 0
    while i < len(tokens):
        cmd = tokens[i]
        nums = []
        i += 1
        while i < len(tokens) and tokens[i] not in "MLC":
            nums.append(float(tokens[i]))
            i += 1
        if cmd == "M":
            cur = (nums[0], nums[1])
            pts.append(cur)
        elif cmd == "L":
            end = (nums[0], nums[1])
            pts += [
                (cur[0] + (end[0] - cur[0]) * k / steps, cur[1] + (end[1] - cur[1]) * k / steps)
                for k in range(1, steps + 1)
            ]
            cur = end
        else:
            c1, c2, end = (nums[0], nums[1]), (nums[2], nums[3]), (nums[4], nums[5])
            pts += [_bezier(cur, c1, c2, end, k / steps) for k in range(1, steps + 1)]
            cur = end
    return pts


def drawn(svg: str) -> tuple[dict[str, tuple[float, float, float, float]], list[tuple[str, str, str]]]:
    root = ET.fromstring(svg)
    boxes = {}
    for g in root.findall("s:g[@class='node']", NS):
        r = g.find("s:rect", NS)
        boxes[g.get("data-node")] = tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))
    edges = [
        (p.get("data-from"), p.get("data-to"), p.get("d")) for p in root.findall("s:path[@class='edge']", NS)
    ]
    return boxes, edges


def edges_behind_boxes(svg: str) -> list[str]:
    """Each edge that passes through a box, and edges that do not start/end at their own boxes."""
    boxes, edges = drawn(svg)
    bad = []
    for up, down, d in edges:
        points = sample_path(d)
        bx, by, bw, bh = boxes[up]
        if not (abs(points[0][0] - (bx + bw)) < 0.2 and by < points[0][1] < by + bh):
            bad.append(f"{up} -> {down} does not start on the right side of {up!r}")
        tx, ty, _, th = boxes[down]
        if not (abs(points[-1][0] - (tx - 2)) < 0.2 and ty < points[-1][1] < ty + th):
            bad.append(f"{up} -> {down} does not end at the left side of {down!r}")
        for name, (x, y, w, h) in boxes.items():
            inside = [p for p in points if x + 0.5 < p[0] < x + w - 0.5 and y + 0.5 < p[1] < y + h - 0.5]
            if inside:
                bad.append(f"{up} -> {down} passes through the box of {name!r} at {inside[0]}")
    return bad


def assert_no_edge_behind_a_box(svg: str, n_edges: int) -> None:
    assert len(drawn(svg)[1]) == n_edges
    assert edges_behind_boxes(svg) == []


SHAPES = {
    "diamond": ({"prepare": [], "train": ["prepare"], "evaluate": ["prepare", "train"]}, 3),
    "long skip": ({"a": [], "b": ["a"], "c": ["b"], "d": ["c"], "report": ["a", "b", "d"]}, 6),
    "fan out and in": (
        {
            "load": [],
            **{f"fold{i}": ["load"] for i in range(4)},
            "pick": [f"fold{i}" for i in range(4)],
            "ship": ["load", "pick"],
        },
        10,
    ),
    "two sources, crossed": ({"x": [], "y": [], "p": ["y"], "q": ["x"], "z": ["p", "q", "x"]}, 5),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_edges_are_routed_around_boxes(name: str) -> None:
    edges, n = SHAPES[name]
    assert_no_edge_behind_a_box(dag_svg(graph(edges)), n)


def test_the_check_catches_an_edge_drawn_straight_through_train() -> None:
    """The reported bug, as the old renderer drew it: three boxes in a row, prepare -> evaluate straight
    behind train."""
    box = '<g class="node" data-node="{0}"><rect x="{1}" y="20" width="120" height="34"/></g>'
    edge = '<path class="edge" data-from="{0}" data-to="{1}" d="M {2} 37 C 1 37, 1 37, {3} 37"/>'
    svg = "".join(
        [
            '<svg xmlns="http://www.w3.org/2000/svg">',
            box.format("prepare", 20),
            box.format("train", 210),
            box.format("evaluate", 400),
            edge.format("prepare", "train", 140, 208).replace("C 1 37, 1 37", "C 175 37, 175 37"),
            edge.format("train", "evaluate", 330, 398).replace("C 1 37, 1 37", "C 365 37, 365 37"),
            edge.format("prepare", "evaluate", 140, 398).replace("C 1 37, 1 37", "C 270 37, 270 37"),
            "</svg>",
        ]
    )
    bad = edges_behind_boxes(svg)
    assert len(bad) == 1 and bad[0].startswith("prepare -> evaluate passes through the box of 'train'"), bad


def test_the_long_edge_runs_through_a_free_slot_beside_train() -> None:
    lay = dag_layout(graph(SHAPES["diamond"][0]))
    pts = lay.edges[("prepare", "evaluate")]
    assert len(pts) == 4  # source, the dummy slot in train's layer (in and out), target
    tx, ty, tw, th = lay.boxes["train"]
    assert pts[1][0] == tx and pts[2][0] == tx + tw
    assert not ty <= pts[1][1] <= ty + th  # the slot is above or below train, not behind it


def test_barycenter_order_removes_avoidable_crossings() -> None:
    # x feeds q and y feeds p, but p is called first: drawn in call order the two edges cross
    lay = dag_layout(graph({"x": [], "y": [], "p": ["y"], "q": ["x"]}))
    b = lay.boxes
    assert (b["x"][1] < b["y"][1]) == (b["q"][1] < b["p"][1])


def test_dag_cli_writes_the_svg(tmp_path, modules) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from modelyard.cli import app

    modules.write(
        "diamond",
        """
import modelyard as yard

@yard.step
def prepare() -> int:
    return 1

@yard.step
def train(x: int) -> int:
    return x + 1

@yard.step
def evaluate(x: int, model: int) -> int:
    return x + model

@yard.pipeline(experiment="dag")
def pipe():
    data = prepare()
    return evaluate(data, train(data))
""",
    )
    out = tmp_path / "dag.svg"
    res = CliRunner().invoke(app, ["pipeline", "dag", modules.ref("diamond"), "--svg", str(out)])
    assert res.exit_code == 0, res.output
    assert f"Wrote {out} (3 steps)." in res.output
    assert_no_edge_behind_a_box(out.read_text(), 3)
