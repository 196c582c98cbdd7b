"""Progressive delivery: canary, blue-green, shadow and A/B rollouts with automatic analysis.

    import modelyard as yard

    r = yard.rollout.start("churn-clf", 8, target="http://127.0.0.1:8080", strategy="canary",
                           steps=[5, 25, 50, 100], interval_s="2m", max_error_rate=0.01,
                           max_p99_ms=50, max_drift=0.2, min_requests=200)
    yard.rollout.run(r.id)          # the controller: analysis per step, promote or roll back
    yard.rollout.status("churn-clf")

or ``yard rollout start churn-clf --to 8 --server http://127.0.0.1:8080 ...``.
"""

from modelyard.rollout._api import abort, pause, promote, resume, rollback, run, start, status
from modelyard.rollout._config import PromQuery, RolloutConfig, Step, plan_steps
from modelyard.rollout._controller import Controller
from modelyard.rollout._kube import KubernetesTarget
from modelyard.rollout._service import Rollout, RolloutEvent, RolloutService
from modelyard.rollout._state import RolloutState, RolloutStateError, StepResult
from modelyard.rollout._stats import ABResult, ArmStats, ab_test, msprt, two_proportion_test, welch_test
from modelyard.rollout._target import HttpTarget, LocalTarget, TargetError

__all__ = [
    "ABResult",
    "ArmStats",
    "Controller",
    "HttpTarget",
    "KubernetesTarget",
    "LocalTarget",
    "PromQuery",
    "Rollout",
    "RolloutConfig",
    "RolloutEvent",
    "RolloutService",
    "RolloutState",
    "RolloutStateError",
    "Step",
    "StepResult",
    "TargetError",
    "ab_test",
    "abort",
    "msprt",
    "pause",
    "plan_steps",
    "promote",
    "resume",
    "rollback",
    "run",
    "start",
    "status",
    "two_proportion_test",
    "welch_test",
]
