"""Serving: a fast ASGI model server built from a declarative deployment spec.

    import modelyard as yard

    server = yard.serving.build_app({"models": {"primary": "churn-clf@production"}})
    # uvicorn.run(server, port=8080); server.swap(new_spec) while it runs

or from the shell: ``yard serve churn-clf@production --port 8080 [--workers auto]``.
Endpoints: ``POST /v1/models/{name}/predict``, ``POST /invocations`` (MLflow formats),
``/v2/...`` (Open Inference Protocol), ``/health/live``, ``/health/ready``, ``/metrics``,
``/openapi.json``, ``PUT /admin/spec`` (token).
"""

from modelyard.serving._app import ModelServer, SwapError, build_app
from modelyard.serving._breaker import BreakerState, CircuitBreaker
from modelyard.serving._predlog import PredictionLogger, read_prediction_log
from modelyard.serving._runtime import Deployment, ModelRuntime
from modelyard.serving._server import available_cpus, resolve_workers, serve
from modelyard.serving._spec import (
    BatchingSpec,
    BreakerSpec,
    DeploymentSpec,
    FallbackSpec,
    LimitsSpec,
    ModelSlot,
    PredictionLogSpec,
    SingleTraffic,
    load_spec,
    spec_from_flags,
)
from modelyard.serving._traffic import ROUTERS

__all__ = [
    "ROUTERS",
    "BatchingSpec",
    "BreakerSpec",
    "BreakerState",
    "CircuitBreaker",
    "Deployment",
    "DeploymentSpec",
    "FallbackSpec",
    "LimitsSpec",
    "ModelRuntime",
    "ModelServer",
    "ModelSlot",
    "PredictionLogSpec",
    "PredictionLogger",
    "SingleTraffic",
    "SwapError",
    "available_cpus",
    "build_app",
    "load_spec",
    "read_prediction_log",
    "resolve_workers",
    "serve",
    "spec_from_flags",
]
