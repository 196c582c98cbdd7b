"""Protected aliases: moving one runs the gate policy attached to the model first.

The registry calls :func:`check_alias_move` before it moves an alias (see
``RegistryService.set_alias``). It returns what the registry writes into the audit row (the gate
results, whether they were overridden) or raises :class:`GateFailed` listing every failed gate.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelyard import _rpc
from modelyard._yaml import read_yaml_text
from modelyard.errors import InvalidArgumentError, ModelyardError, ValidationFailed
from modelyard.evaluation._gates import GateFailed, GateReport, run_gates
from modelyard.evaluation._policy import GatePolicy, parse_policy

__all__ = ["attach_policy", "attached_policy", "check_alias_move", "detach_policy", "is_protected"]


def attach_policy(name: str, policy: str | os.PathLike[str], *, uri: Any = None) -> GatePolicy:
    """Attach the gate policy file ``policy`` to model ``name``: its protected aliases now need its gates.

    The YAML is checked and stored in the metadata store (a later edit of the file needs
    another attach); relative paths in it are resolved from the file's folder. On a server's store
    (``http(s)://``) the gates run on the server, which opens no file a client names: the data must be
    a registered dataset (``NAME@VERSION``), and a suite file is read here and sent inline.
    """
    from modelyard.evaluation._service import EvaluationService
    from modelyard.registry import get_model

    path = Path(policy).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(f"The gate policy file {str(policy)!r} does not exist.")
    get_model(name, uri=uri)  # the model must exist (NotFoundError with did-you-mean otherwise)
    text = read_yaml_text(path, what="gate policy")
    parsed = parse_policy(text, source=str(policy), base=path.resolve().parent)
    source = str(path.resolve())
    if _on_server(uri):
        text, parsed = _for_server(parsed, path)
        source = path.name  # the server never uses a client's path
    needs_data = bool(
        parsed.metrics
        or parsed.champion
        or parsed.slices
        or parsed.latency
        or parsed.behavior
        or parsed.data.suite
    )
    if needs_data and not parsed.data.dataset:
        # an alias move runs the attached gates with no --data: without it every promotion is refused
        raise InvalidArgumentError(
            f"{policy}: an attached policy runs its gates when a protected alias moves, so it must name its "
            "evaluation data: add 'data: {dataset: NAME@VERSION, label: COLUMN}'."
        )
    EvaluationService(uri).attach_policy(name, text, source)
    return parsed


def _on_server(uri: Any) -> bool:
    from modelyard._workspace import get_workspace

    return get_workspace(uri).remote is not None


def _for_server(parsed: GatePolicy, path: Path) -> tuple[str, GatePolicy]:
    """The policy text a server can run: no file of this machine named in it (a dataset file refused,
    a suite file's content put in its place)."""
    import yaml

    data = parsed.data
    if data.dataset and Path(parsed.resolve_path(data.dataset)).is_file():
        raise InvalidArgumentError(
            f"{parsed.where('data', 'dataset')}: {data.dataset!r} is a file on this machine, but the gates "
            "of an attached policy run on the server, which cannot read it. Register it "
            f"(yard data add NAME {data.dataset}) and name it as NAME@VERSION in the policy."
        )
    if not isinstance(data.suite, str):
        return parsed.text, parsed
    suite_path = Path(parsed.resolve_path(data.suite))
    if not suite_path.is_file():
        raise InvalidArgumentError(
            f"{parsed.where('data', 'suite')}: the suite file {data.suite!r} does not exist."
        )
    from modelyard.data._expectations import load_suite

    load_suite(suite_path)  # errors name the suite file's line, before anything is sent
    raw = yaml.safe_load(parsed.text) or {}
    raw["data"]["suite"] = yaml.safe_load(read_yaml_text(suite_path, what="expectation suite"))
    text = (
        f"# {path.name}, attached with its suite {data.suite} inline (a server opens no client's file)\n"
        + yaml.safe_dump(raw, sort_keys=False)
    )
    return text, parse_policy(text, source=path.name, files=False)


def detach_policy(name: str, *, uri: Any = None) -> bool:
    """Remove model ``name``'s gate policy (its aliases are then unguarded); False when none was attached."""
    from modelyard.evaluation._service import EvaluationService

    return EvaluationService(uri).detach_policy(name)


def attached_policy(name: str, *, uri: Any = None) -> GatePolicy | None:
    """The gate policy attached to model ``name``, or None."""
    from modelyard.evaluation._service import EvaluationService

    found = EvaluationService(uri).policy_text(name)
    if found is None:
        return None
    text, source = found
    if text is None:
        return None
    # served to a client (a principal is calling): the gates open no file the policy names, neither
    # relative to where a client's file was nor anywhere else on the server's disk
    files = _rpc.current_principal.get() is None
    base = Path(source).parent if source and files else None
    return parse_policy(
        text, source=f"{source or 'attached policy'} (attached to {name})", base=base, files=files
    )


def is_protected(name: str, alias: str, *, uri: Any = None) -> bool:
    """True when model ``name`` has a gate policy attached whose ``protected`` list names ``alias``.

    On a server, moving, rolling back or deleting a protected alias needs maintainer on the model.
    """
    policy = attached_policy(name, uri=uri)
    return policy is not None and alias in policy.protected


def check_alias_move(
    name: str, alias: str, version: int, *, force: bool = False, reason: str | None = None, uri: Any = None
) -> dict[str, Any] | None:
    """Run the gates before ``alias`` of ``name`` moves to ``version``.

    An alias is protected when the model has a gate policy attached (:func:`attach_policy`) and
    the alias is in the policy's ``protected`` list (``[production]`` by default). Returns None
    when the alias is not protected, else a dict for the audit
    row: ``{"gates": {"passed", "forced", "check_id", "policy", "failed", "results"}}``. Raises
    :class:`GateFailed` (listing every failed gate) unless ``force``; ``force`` needs a ``reason``.
    """
    policy = attached_policy(name, uri=uri)
    if policy is None or alias not in policy.protected:
        return None
    if policy.allow_pickle:
        # on a server the gates run there: unpickling a model anyone with write access uploaded runs
        # its code in the server's process, so only an admin may move an alias under such a policy
        _rpc.require("admin", why=f"running gates that unpickle models (allow_pickle in {name}'s policy)")
    if force and not (reason and reason.strip()):
        raise InvalidArgumentError(
            f'Overriding the gates of protected alias {alias!r} needs a reason: add --reason "..." '
            "(it is written to the audit log with the gate results)."
        )
    from modelyard.registry import get_model_version

    ref = get_model_version(name, version, uri=uri).ref  # a missing version is the registry's NotFoundError
    trigger = "forced" if force else "promotion"
    try:
        report = run_gates(ref, policy, trigger=trigger, alias=alias, reason=reason, uri=uri)
    except ModelyardError as exc:
        if not force:
            raise ValidationFailed(
                f"Refusing to move alias {alias!r} of {name!r} to version {version}: its gates "
                f"could not run: {exc}"
            ) from exc
        return {"gates": {"policy": policy.digest, "passed": False, "forced": True, "error": str(exc)}}
    detail = _detail(report, policy, force)
    if not report.passed and not force:
        bad = report.failed
        lines = report.failures()
        raise GateFailed(
            f"Refusing to move alias {alias!r} of {name!r} to version {version}: {len(bad)} of "
            f"{len(report.results)} gates failed:\n{lines}\n"
            f'Fix the model, or override with --force --reason "..." (written to the audit log).',
            report,
        )
    return detail


def _detail(report: GateReport, policy: GatePolicy, force: bool) -> dict[str, Any]:
    return {
        "gates": {
            "policy": policy.digest,
            "passed": report.passed,
            "forced": bool(force and not report.passed),
            "check_id": report.check_id,
            "evaluation_id": report.evaluation.id if report.evaluation else None,
            "failed": [r.gate for r in report.failed],
            "results": [r.to_dict() for r in report.results],
        }
    }
