"""A step is judged on sample counts, never on the machine's speed: the analysis waits for
``min_requests`` samples (up to ``max_wait``) instead of giving up when a time window ends."""

from __future__ import annotations

from modelyard.rollout._analysis import analyse
from modelyard.rollout._config import load_config
from modelyard.rollout._state import StepResult


def _snap(ok: int, errors: int = 0, version: int = 2) -> dict[str, float]:
    return {
        f"yard_serving_routed_requests_total{{outcome=ok,version={version}}}": float(ok),
        f"yard_serving_routed_requests_total{{outcome=error,version={version}}}": float(errors),
    }


def _at(cfg, snap, elapsed_s):  # type: ignore[no-untyped-def]
    return analyse(
        cfg,
        model="m",
        stable=1,
        candidate=2,
        step=0,
        current=snap,
        baseline=None,
        elapsed_s=elapsed_s,
        window_s=cfg.interval_s,
    )


def test_a_step_short_of_samples_waits_for_them_instead_of_pausing() -> None:
    cfg = load_config(interval_s="2s", min_requests=60, max_error_rate="2%", max_wait_s="5m")
    # 40 of 60 samples long after the window (a slow machine): not decided, says what it waits for
    a = _at(cfg, _snap(40), elapsed_s=6.0)
    assert a.result is None
    assert a.reason == "waiting for samples: error_rate 0: 40 of 60 samples"
    a = _at(cfg, _snap(40), elapsed_s=2 + 299.0)
    assert a.result is None
    # the 60th sample decides it, however long it took
    a = _at(cfg, _snap(60), elapsed_s=250.0)
    assert a.result is StepResult.SUCCESSFUL
    assert a.reason == "error_rate 0 (must be <= 0.02) over 60 samples: pass"
    # past the window plus max-wait with too few samples: inconclusive (the controller pauses)
    a = _at(cfg, _snap(40), elapsed_s=302.0)
    assert a.result is StepResult.INCONCLUSIVE
    assert a.reason == (
        "not enough data after waiting 302s (window 2s + max-wait 300s): error_rate 0: 40 of 60 samples"
    )


def test_enough_samples_pass_only_after_the_least_bake_time_and_failures_end_the_step_at_once() -> None:
    cfg = load_config(interval_s="1m", min_requests=50, max_error_rate="2%")
    a = _at(cfg, _snap(500), elapsed_s=10.0)  # a fast machine: every sample is in, the step runs on
    assert a.result is None and a.reason == "every check passed; the step runs for at least 60s"
    assert _at(cfg, _snap(500), elapsed_s=60.0).result is StepResult.SUCCESSFUL
    # 5 errors in 20 requests already exceed 2% of the 50 needed: failed now, not at the window's end
    a = _at(cfg, _snap(15, errors=5), elapsed_s=1.0)
    assert a.result is StepResult.FAILED
    assert a.reason.startswith(
        "error_rate 0.25 (must be <= 0.02) over 20 samples: fail; 5 errors already exceed"
    )


def test_max_wait_is_a_duration_with_a_unit() -> None:
    import pytest

    from modelyard.errors import InvalidArgumentError

    assert load_config(max_wait_s="90s").max_wait_s == 90.0
    assert load_config().max_wait_s == 600.0
    with pytest.raises(
        InvalidArgumentError,
        match=r"max-wait must be a positive duration with a unit, like 500ms, "
        r"30s, 2m or 1h\. Got '10' instead",
    ):
        load_config(max_wait_s="10")
