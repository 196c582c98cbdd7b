"""A gate policy run on the server never opens a file a client names: not the server's (that would
let any maintainer read the server's disk through the gates) and not a client's path resolved on
the server. A client attaching ``gates.yaml`` sends what the server needs: a suite inline, the data
as a registered dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.data import add
from modelyard.errors import InvalidArgumentError, ValidationFailed
from modelyard.evaluation import EvaluationService, attach_policy
from modelyard.registry import audit_log, get_model_version, register_model, set_alias


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    return pd.DataFrame({"x": x, "y": (x + rng.normal(scale=0.3, size=300) > 0).astype(int)})


@pytest.fixture
def served_model(server_uri: str, frame: pd.DataFrame) -> str:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    register_model(model, "m", input_example=frame[["x"]].head(3), uri=server_uri)
    return server_uri


def test_the_server_refuses_to_read_its_own_files_named_by_a_policy(
    served_model: str, tmp_path: Path, frame: pd.DataFrame
) -> None:
    uri = served_model
    server_side = tmp_path / "server-only"  # files on the server's disk a client should never read
    server_side.mkdir()
    frame.to_csv(server_side / "secret.csv", index=False)
    (server_side / "expectations.yaml").write_text("columns: {x: {type: float}}\n")
    add(frame, name="m-data", uri=uri)
    svc = EvaluationService(uri)
    for dataset, suite, source in (
        (str(server_side / "secret.csv"), None, None),  # absolute
        ("secret.csv", None, str(server_side / "gates.yaml")),  # relative to a "source" on the server
        ("~/secret.csv", None, None),
        ("m-data@v1", str(server_side / "expectations.yaml"), None),  # a suite file on the server
        ("m-data@v1", "expectations.yaml", str(server_side / "gates.yaml")),
    ):
        data = f"dataset: {dataset!r}, label: y" + (f", suite: {suite!r}" if suite else "")
        text = f"data: {{{data}}}\nmetrics: {{accuracy: {{min: 0.0}}}}\n"
        svc.attach_policy("m", text, source)  # a maintainer's raw call: no client-side checks
        with pytest.raises(ValidationFailed, match=r"never opens a file a client names") as info:
            set_alias("m", "production", 1, uri=uri)
        assert "secret" not in str(info.value).split("never opens", 1)[1]  # no content, no listing
    with pytest.raises(Exception):  # noqa: B017 - the alias never moved
        get_model_version("m", "production", uri=uri)


def test_a_client_sends_its_policy_with_the_suite_inline(
    served_model: str, tmp_path: Path, frame: pd.DataFrame
) -> None:
    uri = served_model
    add(frame, name="m-data", uri=uri)
    client = tmp_path / "client"
    client.mkdir()
    frame.to_csv(client / "eval.csv", index=False)
    (client / "expectations.yaml").write_text("columns:\n  x: {type: float}\n  y: {type: integer}\n")
    (client / "gates.yaml").write_text(
        "data: {dataset: eval.csv, label: y}\nmetrics: {accuracy: {min: 0.6}}\n"
    )
    with pytest.raises(
        InvalidArgumentError, match=r"is a file on this machine.*yard data add NAME eval\.csv"
    ):
        attach_policy("m", client / "gates.yaml", uri=uri)

    (client / "gates.yaml").write_text(
        "data: {dataset: m-data@v1, label: y, suite: expectations.yaml}\nmetrics: {accuracy: {min: 0.6}}\n"
    )
    attach_policy("m", client / "gates.yaml", uri=uri)
    text, source = EvaluationService(uri).policy_text("m") or [None, None]
    assert source == "gates.yaml" and text is not None
    assert "expectations.yaml" not in text.split("\n", 1)[1] and str(client) not in text
    set_alias("m", "production", 1, uri=uri)  # the gates ran on the server: data and suite passed
    gates = audit_log("m", uri=uri)[-1].detail["gates"]
    assert gates["passed"] is True
    assert {r["gate"] for r in gates["results"]} == {"data.suite", "metrics.accuracy"}
