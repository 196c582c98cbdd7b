from __future__ import annotations

import pytest

from modelyard.errors import InvalidArgumentError
from modelyard.serving import DeploymentSpec, load_spec, spec_from_flags
from modelyard.serving._server import _cgroup_cpus, available_cpus, resolve_workers


def test_yaml_spec_defaults_and_endpoint(tmp_path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        "models:\n  primary: churn-clf@production\nfallback: {model: churn-clf/2}\ntimeout_ms: 250\n"
    )
    spec = load_spec(path)
    assert spec.endpoint_name == "churn-clf"
    assert spec.traffic.kind == "single" and spec.traffic.model == "primary"
    assert spec.fallback.model == "churn-clf/2"
    assert spec.batching.enabled and spec.batching.max_batch_size == 1024
    assert spec.timeout_ms == 250
    again = load_spec(spec.to_yaml())
    assert again == spec


def test_spec_errors_name_the_field() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"\(spec\): traffic sends requests to model slot 'blue', which is not in 'models'",
    ):
        load_spec({"models": {"primary": "m/1"}, "traffic": {"kind": "single", "model": "blue"}})
    with pytest.raises(InvalidArgumentError, match=r"traffic: .*'single'"):
        load_spec({"models": {"primary": "m/1"}, "traffic": {"kind": "weighted"}})
    with pytest.raises(InvalidArgumentError, match=r"fallback: a fallback needs exactly one of 'model'"):
        load_spec({"models": {"primary": "m/1"}, "fallback": {}})
    with pytest.raises(InvalidArgumentError, match=r"models.primary.ref: .*version 'x' that is not a number"):
        load_spec({"models": {"primary": "m/x"}})
    with pytest.raises(InvalidArgumentError, match=r"batching.max_batch_size: .*greater than or equal to 1"):
        load_spec({"models": {"primary": "m/1"}, "batching": {"max_batch_size": 0}})
    with pytest.raises(InvalidArgumentError, match=r"unknown_key: Extra inputs are not permitted"):
        load_spec({"models": {"primary": "m/1"}, "unknown_key": 1})
    with pytest.raises(InvalidArgumentError, match=r"does not exist"):
        load_spec("missing.yaml")
    with pytest.raises(InvalidArgumentError, match=r"must be a mapping with a 'models' key. Got list"):
        load_spec("- a\n- b\n")


def test_spec_from_flags() -> None:
    spec = spec_from_flags("churn-clf@production", fallback="const:0", timeout_ms=50, max_batch_size=8)
    assert isinstance(spec, DeploymentSpec)
    assert spec.fallback.constant == 0
    assert spec.batching.max_batch_size == 8
    assert spec_from_flags("m", fallback='const:"no"').fallback.constant == "no"
    assert spec_from_flags("m", fallback="m/2").fallback.model == "m/2"
    assert spec_from_flags("m").models["primary"].ref == "m"


def test_workers_auto_is_cgroup_aware(tmp_path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_cpus(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpus(tmp_path) is None
    assert resolve_workers("auto") == available_cpus() >= 1
    assert resolve_workers("3") == 3
    with pytest.raises(
        InvalidArgumentError,
        match=r"The 'workers' parameter of yard serve must be 'auto' or a positive integer. Got 0 instead.",
    ):
        resolve_workers(0)
    with pytest.raises(InvalidArgumentError, match=r"Got 'many' instead"):
        resolve_workers("many")
