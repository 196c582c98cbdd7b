"""modelyard: carry a model from a notebook to production and keep it healthy there.

    import modelyard as yard

    with yard.start_run(experiment="churn", params={"lr": 0.01}) as run:
        run.log_metric("loss", 0.3, step=1)

Names are imported lazily so that ``import modelyard`` (and the ``yard`` CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from modelyard import _hooks
from modelyard._version import __version__

# Higher layers extend lower ones by registering here (DEVELOPING.md, "Layers"), imported only when
# used: tracking's Run gets log_model from the registry and use_dataset/inputs from data (when the
# first run is made); the evaluation feature checks alias moves and adds a model-card section.
_hooks.extend("tracking.Run", "modelyard.registry._run", "modelyard.data._run")
_hooks.extend("registry.alias_move", "modelyard.evaluation._protect:check_alias_move")
_hooks.extend("registry.alias_protected", "modelyard.evaluation._protect:is_protected")
_hooks.extend("registry.card_section", "modelyard.evaluation._hooks:card_section")
# a GateFailed raised on a server reaches its client with the GateReport rebuilt from its JSON
_hooks.extend("errors.gate_report", "modelyard.evaluation._gate_report:report_from_dict")

#: Public name → "module:attribute". Later features add their names here.
_EXPORTS: dict[str, str] = {
    # tracking
    "start_run": "modelyard.tracking._api:start_run",
    "active_run": "modelyard.tracking._run:active_run",
    "get_run": "modelyard.tracking._api:get_run",
    "search_runs": "modelyard.tracking._api:search_runs",
    "delete_run": "modelyard.tracking._api:delete_run",
    "flush": "modelyard.tracking._run:flush_all",
    "init": "modelyard.tracking._api:init",
    "Run": "modelyard.tracking._run:Run",
    "RunRecord": "modelyard.tracking._records:RunRecord",
    "RunStatus": "modelyard.tracking._records:RunStatus",
    # stores
    "Workspace": "modelyard._workspace:Workspace",
    "set_uri": "modelyard._workspace:set_uri",
    "get_workspace": "modelyard._workspace:get_workspace",
    "BlobStore": "modelyard.blobs._store:BlobStore",
    "ModelyardError": "modelyard.errors:ModelyardError",
    # pipelines
    "step": "modelyard.pipelines._spec:step",
    "pipeline": "modelyard.pipelines._spec:pipeline",
    "load_pipeline": "modelyard.pipelines._loader:load_pipeline",
    "PipelineResult": "modelyard.pipelines._records:PipelineResult",
    # monitoring
    "drift": "modelyard.monitoring._drift:drift",
    "DriftReport": "modelyard.monitoring._report:DriftReport",
    "monitoring": "modelyard.monitoring._api:module",
    # serving
    "build_app": "modelyard.serving._app:build_app",
    "DeploymentSpec": "modelyard.serving._spec:DeploymentSpec",
    # registry
    "load_model": "modelyard.registry._api:load_model",
    "get_model_version": "modelyard.registry._api:get_model_version",
    "LoadedModel": "modelyard.registry._model:LoadedModel",
    "Signature": "modelyard.registry._signature:Signature",
    # data
    "data": "modelyard.data._api:module",
    "validate": "modelyard.data._validate:validate",
    "ValidationReport": "modelyard.data._report:ValidationReport",
    # evaluation
    "evaluate": "modelyard.evaluation._evaluate:evaluate",
    "run_gates": "modelyard.evaluation._gates:run_gates",
    "load_policy": "modelyard.evaluation._policy:load_policy",
    "attach_policy": "modelyard.evaluation._protect:attach_policy",
    "list_evaluations": "modelyard.evaluation._evaluate:list_evaluations",
    "Evaluation": "modelyard.evaluation._evaluate:Evaluation",
    "GateReport": "modelyard.evaluation._gate_report:GateReport",
}

_SUBMODULES = {
    "errors",
    "config",
    "tracking",
    "blobs",
    "store",
    "cli",
    "registry",
    "evaluation",
    "pipelines",
    "serving",
    "monitoring",
    "rollout",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is not None:
        module, attr = target.split(":")
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"modelyard.{name}")
    raise AttributeError(f"module 'modelyard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)
