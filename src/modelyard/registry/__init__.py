"""Model registry: safe model formats (flavors), signatures, versions, aliases, audit log, model cards.

import modelyard as yard

with yard.start_run(experiment="churn") as run:
    mv = run.log_model(model, name="churn-clf", input_example=X[:5])
yard.registry.set_alias("churn-clf", "production", version=mv.version, reason="beats v1 on AUC")
model = yard.load_model("churn-clf@production")
model.predict(df)
"""

from modelyard.registry._api import (
    archive,
    audit_log,
    delete_alias,
    get_model,
    get_model_version,
    list_models,
    list_versions,
    load_model,
    log_model,
    register_model,
    register_torch_class,
    restore,
    rollback,
    set_alias,
    update_model,
)
from modelyard.registry._card import ModelCard, model_card
from modelyard.registry._model import (
    LoadedModel,
    ModelVersionMismatchWarning,
    PackedModel,
    RequirementsMismatchWarning,
)
from modelyard.registry._service import (
    AuditEntry,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    RegistryService,
    parse_ref,
)
from modelyard.registry._signature import ColSpec, Signature, SignatureError
from modelyard.registry.flavors import FLAVORS

__all__ = [
    "FLAVORS",
    "AuditEntry",
    "ColSpec",
    "LoadedModel",
    "ModelCard",
    "ModelRef",
    "ModelVersion",
    "ModelVersionMismatchWarning",
    "PackedModel",
    "RegisteredModel",
    "RegistryService",
    "RequirementsMismatchWarning",
    "Signature",
    "SignatureError",
    "archive",
    "audit_log",
    "delete_alias",
    "get_model",
    "get_model_version",
    "list_models",
    "list_versions",
    "load_model",
    "log_model",
    "model_card",
    "parse_ref",
    "register_model",
    "register_torch_class",
    "restore",
    "rollback",
    "set_alias",
    "update_model",
]
