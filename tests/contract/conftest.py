"""Fixtures the contract tests share with the folders their tests moved from (defined once in testkit)."""

from testkit.evaluation import churn, good_model, weak_model  # noqa: F401  (fixtures)
from testkit.pipelines import modules, pipe_files  # noqa: F401  (fixtures)
from testkit.registry import churn_frame, sk_model  # noqa: F401  (fixtures)
