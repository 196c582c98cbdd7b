"""``automations.yaml``: read and check automations, with the file and line of every mistake.

    - name: retrain-churn
      model: churn-clf                    # optional: the model the pipeline registers (checked)
      timezone: Europe/Paris              # for the schedules below (default UTC)
      on:
        - schedule: "0 3 * * 1"           # cron on the wall clock of `timezone`
        - alert: churn-drift              # a monitoring alert rule firing (or MODEL/RULE)
        - dataset: churn-train            # a new version of a dataset
        - webhook: env:RETRAIN_SECRET     # POST /api/v1/automation/webhook with this secret
      run: pipelines/train.py:train       # a pipeline; it returns the model version it registered
      params: {epochs: 3}                 # optional pipeline parameters
      then:
        gate: gates.yaml                  # evaluation gates on the new version
        approval: release-team            # optional: a maintainer of this group says yes
        rollout: {strategy: canary, steps: [10, 50, 100], interval: 10m, server: http://serve:8080}
      produces: [churn-features]          # datasets the pipeline writes (checked for cycles)
      notify: [env:SLACK_WEBHOOK_URL]     # webhooks told about failures, approvals and releases
      concurrency: 1                      # the only value: one run at a time, one queued

:func:`parse_automations` checks what the file alone can tell (keys, cron, time zones, paths,
the pipeline's import); the service's ``apply`` checks the store's references (alert rules,
datasets, the approval group, cycles) and names the same file and line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.automation._cron import CronError, Schedule
from modelyard.errors import InvalidArgumentError, NotFoundError, did_you_mean

__all__ = ["AutomationError", "parse_automations", "where"]

_KEYS = ("name", "model", "timezone", "on", "run", "params", "then", "produces", "notify", "concurrency")
_THEN = ("gate", "approval", "rollout")
_TRIGGERS = ("schedule", "alert", "dataset", "webhook")
_DURATIONS = {"interval": "interval_s", "max_wait": "max_wait_s", "preview_analysis": "preview_analysis_s",
              "duration": "duration_s", "tick": "tick_s"}  # fmt: skip


class AutomationError(InvalidArgumentError):
    """An automation that cannot be applied; the message starts with ``file:line:``."""


def where(spec: dict[str, Any], line: int | None = None) -> str:
    """``file:line: automation 'name'`` for messages about ``spec`` (at ``line`` or its own)."""
    at = line or spec.get("line") or "?"
    return f"{spec.get('source') or 'automations'}:{at}: automation {spec['name']!r}"


@dataclass
class _Ctx:
    source: str
    base: Path
    name: str = "?"

    def fail(self, node: Any, message: str) -> AutomationError:
        line = node.start_mark.line + 1 if node is not None and node.start_mark else "?"
        who = f" automation {self.name!r}:" if self.name != "?" else ""
        return AutomationError(f"{self.source}:{line}:{who} {message}")


def _value(node: Any) -> Any:
    import yaml

    return yaml.SafeLoader("").construct_object(node, deep=True)


def _mapping(ctx: _Ctx, node: Any, what: str) -> dict[str, tuple[Any, Any]]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise ctx.fail(node, f"{what} must be a mapping.")
    out: dict[str, tuple[Any, Any]] = {}
    for k, v in node.value:
        # the key as written: YAML 1.1 reads a bare `on:` as the boolean true
        key = k.value if isinstance(k, yaml.ScalarNode) else _value(k)
        if not isinstance(key, str):
            raise ctx.fail(k, f"{what} has a key {key!r} that is not a name.")
        if key in out:
            raise ctx.fail(k, f"{what} repeats the key {key!r}.")
        out[key] = (k, v)
    return out


def _str(ctx: _Ctx, node: Any, what: str) -> str:
    value = _value(node)
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(node, f"{what} must be a non-empty string; got {value!r}.")
    return value.strip()


def _path(ctx: _Ctx, node: Any, value: str, what: str) -> str:
    p = Path(value).expanduser()
    p = p if p.is_absolute() else ctx.base / p
    if not p.is_file():
        raise ctx.fail(node, f"{what} {value!r} does not exist (looked at {p}).")
    return str(p.resolve())


def _trigger(ctx: _Ctx, node: Any, timezone: str) -> dict[str, Any]:
    items = _mapping(ctx, node, "a trigger (one of schedule:, alert:, dataset:, webhook:)")
    if len(items) != 1:
        raise ctx.fail(node, f"a trigger has one key of {', '.join(_TRIGGERS)}; got {sorted(items)}.")
    kind, (knode, vnode) = next(iter(items.items()))
    line = knode.start_mark.line + 1
    if kind == "schedule":
        raw = _value(vnode)
        cron, tz = (
            (raw.get("cron"), raw.get("timezone", timezone)) if isinstance(raw, dict) else (raw, timezone)
        )
        if isinstance(raw, dict) and set(raw) - {"cron", "timezone"}:
            raise ctx.fail(vnode, f"a schedule has keys cron and timezone; got {sorted(raw)}.")
        if not isinstance(cron, str):
            raise ctx.fail(vnode, f'schedule must be a cron string such as "0 3 * * 1"; got {cron!r}.')
        try:
            Schedule(cron.strip(), str(tz))
        except CronError as exc:
            raise ctx.fail(vnode, f"{exc}.") from None
        return {"kind": "schedule", "cron": cron.strip(), "timezone": str(tz), "line": line}
    if kind == "alert":
        ref = _str(ctx, vnode, "alert")
        model, _, rule = ref.rpartition("/")
        return {"kind": "alert", "rule": rule, "model": model or None, "line": line}
    if kind == "dataset":
        return {"kind": "dataset", "dataset": _str(ctx, vnode, "dataset"), "line": line}
    if kind == "webhook":
        ref = _str(ctx, vnode, "webhook")
        if not ref.startswith(("env:", "file:")):
            raise ctx.fail(
                vnode,
                "webhook names where its secret is: env:NAME or file:PATH (never the secret itself, "
                "which would be stored in plain text).",
            )
        return {"kind": "webhook", "secret": ref, "line": line}
    raise ctx.fail(
        knode, f"unknown trigger {kind!r}.{did_you_mean(kind, _TRIGGERS)} Triggers: {', '.join(_TRIGGERS)}."
    )


def _rollout(ctx: _Ctx, node: Any) -> dict[str, Any]:
    from modelyard._shared import parse_duration_s
    from modelyard.rollout._config import load_config

    raw = _value(node)
    if not isinstance(raw, dict):
        raise ctx.fail(node, "rollout must be a mapping such as {strategy: canary, steps: [10, 50, 100]}.")
    options = dict(raw)
    server = options.pop("server", None)
    drive = options.pop("drive", True)
    for short, field in _DURATIONS.items():
        if short in options:
            try:
                options[field] = parse_duration_s(options.pop(short), what=f"The rollout's {short!r}")
            except InvalidArgumentError as exc:
                raise ctx.fail(node, str(exc)) from None
    try:
        cfg = load_config(**options)
    except InvalidArgumentError as exc:
        raise ctx.fail(node, str(exc)) from None
    if server is not None and not isinstance(server, str):
        raise ctx.fail(node, f"rollout server must be a URL (http://HOST:PORT); got {server!r}.")
    return {
        "options": {k: v for k, v in cfg.model_dump(mode="json").items() if k in options or k == "strategy"},
        "server": server,
        "drive": bool(drive),
        "line": node.start_mark.line + 1,
    }


def _automation(ctx: _Ctx, node: Any) -> dict[str, Any]:
    items = _mapping(ctx, node, "an automation")
    ctx.name = "?"
    if "name" not in items:
        raise ctx.fail(node, "an automation needs a 'name'.")
    ctx.name = _str(ctx, items["name"][1], "name")
    for key, (knode, _) in items.items():
        if key not in _KEYS:
            raise ctx.fail(knode, f"unknown key {key!r}.{did_you_mean(key, _KEYS)} Keys: {', '.join(_KEYS)}.")
    for req in ("on", "run"):
        if req not in items:
            raise ctx.fail(node, f"needs {req!r}.")
    spec: dict[str, Any] = {
        "name": ctx.name,
        "source": ctx.source,
        "line": node.start_mark.line + 1,
        "model": _str(ctx, items["model"][1], "model") if "model" in items else None,
    }
    timezone = _str(ctx, items["timezone"][1], "timezone") if "timezone" in items else "UTC"
    import yaml

    on = items["on"][1]
    if not isinstance(on, yaml.SequenceNode) or not on.value:
        raise ctx.fail(on, "'on' is a list of triggers (schedule:, alert:, dataset:, webhook:).")
    spec["triggers"] = [_trigger(ctx, t, timezone) for t in on.value]
    if sum(t["kind"] == "webhook" for t in spec["triggers"]) > 1:
        raise ctx.fail(on, "has more than one webhook trigger; one secret per automation.")
    run_node = items["run"][1]
    ref = _str(ctx, run_node, "run")
    file, sep, fn = ref.rpartition(":")
    if not sep or not fn:
        raise ctx.fail(run_node, f"run names a pipeline as path/to/file.py:function; got {ref!r}.")
    if file.endswith(".py") or os.sep in file:
        ref = f"{_path(ctx, run_node, file, 'pipeline file')}:{fn}"
    try:
        from modelyard.pipelines import load_pipeline

        load_pipeline(ref)
    except (InvalidArgumentError, NotFoundError) as exc:
        raise ctx.fail(run_node, f"unknown pipeline {ref!r}: {exc}") from None
    except Exception as exc:  # the user's module failed to import: say how
        raise ctx.fail(run_node, f"pipeline {ref!r} cannot be loaded: {type(exc).__name__}: {exc}") from None
    params = _value(items["params"][1]) if "params" in items else {}
    if not isinstance(params, dict):
        raise ctx.fail(items["params"][1], "params must be a mapping of pipeline parameters.")
    spec["run"] = {"pipeline": ref, "params": params, "line": run_node.start_mark.line + 1}
    spec["gate"] = spec["approval"] = spec["rollout"] = None
    if "then" in items:
        then = _mapping(ctx, items["then"][1], "then")
        for key, (knode, _) in then.items():
            if key not in _THEN:
                raise ctx.fail(
                    knode,
                    f"unknown step {key!r} under then.{did_you_mean(key, _THEN)} Steps: {', '.join(_THEN)}.",
                )
        if "gate" in then:
            vnode = then["gate"][1]
            policy = _path(ctx, vnode, _str(ctx, vnode, "gate"), "gate policy")
            from modelyard.evaluation import load_policy

            try:
                load_policy(policy)
            except InvalidArgumentError as exc:
                raise ctx.fail(vnode, f"gate policy: {exc}") from None
            spec["gate"] = {"policy": policy, "line": vnode.start_mark.line + 1}
        if "approval" in then:
            vnode = then["approval"][1]
            spec["approval"] = {"group": _str(ctx, vnode, "approval"), "line": vnode.start_mark.line + 1}
        if "rollout" in then:
            spec["rollout"] = _rollout(ctx, then["rollout"][1])
    produces = _value(items["produces"][1]) if "produces" in items else []
    if not isinstance(produces, list) or not all(isinstance(p, str) for p in produces):
        raise ctx.fail(items["produces"][1], "produces is a list of dataset names.")
    spec["produces"] = produces
    notify = _value(items["notify"][1]) if "notify" in items else []
    if isinstance(notify, str):
        notify = [notify]
    if not isinstance(notify, list) or not all(
        isinstance(n, str) and n.startswith(("env:", "file:")) for n in notify
    ):
        raise ctx.fail(
            items["notify"][1],
            "notify is a list of webhooks as env:NAME or file:PATH (the URL holds a token; it is never "
            "stored).",
        )
    spec["notify"] = [
        n if n.startswith("env:") else "file:" + str((ctx.base / n[5:]).resolve()) for n in notify
    ]
    if "concurrency" in items:
        conc = _value(items["concurrency"][1])
        if conc != 1:
            raise ctx.fail(
                items["concurrency"][1],
                "concurrency must be 1 (one run at a time; one trigger queued, later ones dropped); "
                f"got {conc!r}.",
            )
    spec["concurrency"] = 1
    return spec


def parse_automations(source: str | os.PathLike[str], *, text: str | None = None) -> list[dict[str, Any]]:
    """The automations of ``source`` (a YAML file, or ``text`` read as if from it), checked."""
    import yaml

    from modelyard._yaml import compose_yaml

    label = os.fspath(source)
    path = Path(label).expanduser()
    if text is None and not path.is_file():
        raise AutomationError(f"The automations file {label!r} does not exist.")
    try:
        root = compose_yaml(text if text is not None else path, what="automations file", name=label)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise AutomationError(f"{label}:{line}: not valid YAML: {exc.problem}") from None
    ctx = _Ctx(label, path.resolve().parent)
    if isinstance(root, yaml.MappingNode):
        top = _mapping(ctx, root, "the file")
        if set(top) != {"automations"}:
            raise ctx.fail(root, "expected a list of automations (or a top-level 'automations:' list).")
        root = top["automations"][1]
    if not isinstance(root, yaml.SequenceNode) or not root.value:
        raise AutomationError(f"{label}:1: expected a list of automations (each with name, on, run).")
    specs = [_automation(ctx, node) for node in root.value]
    seen: dict[str, dict[str, Any]] = {}
    for s in specs:
        if s["name"] in seen:
            raise AutomationError(
                f"{where(s)}: the name is used twice (first at line {seen[s['name']]['line']})."
            )
        seen[s["name"]] = s
    return specs


def check_spec(spec: Any) -> dict[str, Any]:
    """Refuse a spec that :func:`parse_automations` could not have produced (the ``apply``
    operation takes JSON from any client): the scheduler reads every field it stores."""
    from modelyard.rollout._config import load_config

    def bad(why: str) -> AutomationError:
        name = spec.get("name") if isinstance(spec, dict) else None
        return AutomationError(
            f"Automation {name!r} is not a checked spec ({why}); use `yard automate apply FILE`."
        )

    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
        raise bad("it needs a name")
    if len(spec["name"]) > 250:
        raise bad("the name is longer than 250 characters")
    triggers = spec.get("triggers")
    if not isinstance(triggers, list) or not triggers:
        raise bad("it needs a list of triggers")
    need = {
        "schedule": ("cron", "timezone"),
        "alert": ("rule",),
        "dataset": ("dataset",),
        "webhook": ("secret_sha256",),
    }
    for t in triggers:
        if not isinstance(t, dict) or t.get("kind") not in need:
            raise bad(f"a trigger must have a kind of {', '.join(need)}")
        if not all(isinstance(t.get(k), str) and t[k] for k in need[t["kind"]]):
            raise bad(f"a {t['kind']} trigger needs {', '.join(need[t['kind']])}")
        if t["kind"] == "schedule":
            try:
                Schedule(t["cron"], t["timezone"])
            except CronError as exc:
                raise bad(str(exc)) from None
        if not isinstance(t.get("line", 0), int) or (
            t["kind"] == "alert" and not isinstance(t.get("model") or "", str)
        ):
            raise bad("a trigger's line is a number and its model a name")
    run = spec.get("run")
    if (
        not isinstance(run, dict)
        or not isinstance(run.get("pipeline"), str)
        or not isinstance(run.get("params", {}), dict)
    ):
        raise bad("run needs a pipeline and params as a mapping")
    for key, field in (("gate", "policy"), ("approval", "group")):
        v = spec.get(key)
        if v is not None and (not isinstance(v, dict) or not isinstance(v.get(field), str)):
            raise bad(f"{key} needs a {field}")
    ro = spec.get("rollout")
    if ro is not None:
        if (
            not isinstance(ro, dict)
            or not isinstance(ro.get("options"), dict)
            or not isinstance(ro.get("server") or "", str)
        ):
            raise bad("rollout needs options and a server URL")
        try:
            load_config(**ro["options"])
        except (InvalidArgumentError, TypeError) as exc:
            raise bad(str(exc)) from None
    for key in ("produces", "notify"):
        if not isinstance(spec.get(key, []), list) or not all(isinstance(x, str) for x in spec.get(key, [])):
            raise bad(f"{key} is a list of names")
    if not all(n.startswith(("env:", "file:")) for n in spec.get("notify", [])):
        raise bad("notify webhooks are env:NAME or file:PATH")
    if not isinstance(spec.get("model") or "", str) or spec.get("concurrency", 1) != 1:
        raise bad("model is a name and concurrency 1")
    return spec
