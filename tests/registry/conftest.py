"""Small models and data the registry tests train themselves (defined once in testkit)."""

from testkit.registry import churn_frame, sk_model  # noqa: F401  (fixtures)
