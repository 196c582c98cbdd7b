"""Model evaluation and promotion gates.

import modelyard as yard

ev = yard.evaluate("churn-clf/8", "churn-test@v2", label="churned", slices="plan")
report = yard.run_gates("churn-clf/8", "gates.yaml")      # report.passed, report.failed
"""

from modelyard.evaluation._evaluate import Evaluation, evaluate, get_evaluation, infer_task, list_evaluations
from modelyard.evaluation._gates import GateFailed, GateReport, GateResult, GateStatus, run_gates
from modelyard.evaluation._metrics import (
    METRICS,
    MetricSpec,
    compute_metrics,
    default_metrics,
    prepare_targets,
)
from modelyard.evaluation._policy import GatePolicy, PolicyError, load_policy, parse_policy
from modelyard.evaluation._protect import attach_policy, attached_policy, check_alias_move, detach_policy
from modelyard.evaluation._report import evaluation_table, gate_table, to_junit_xml, write_junit
from modelyard.evaluation._service import EvaluationService
from modelyard.evaluation._slices import slice_codes

__all__ = [
    "METRICS",
    "Evaluation",
    "EvaluationService",
    "GateFailed",
    "GatePolicy",
    "GateReport",
    "GateResult",
    "GateStatus",
    "MetricSpec",
    "PolicyError",
    "attach_policy",
    "attached_policy",
    "check_alias_move",
    "compute_metrics",
    "default_metrics",
    "detach_policy",
    "evaluate",
    "evaluation_table",
    "gate_table",
    "get_evaluation",
    "infer_task",
    "list_evaluations",
    "load_policy",
    "parse_policy",
    "prepare_targets",
    "run_gates",
    "slice_codes",
    "to_junit_xml",
    "write_junit",
]
