"""Small churn data and models the evaluation tests train and register themselves (defined once in
testkit)."""

from testkit.evaluation import churn, good_model, weak_model  # noqa: F401  (fixtures)
