"""The gate policy: a pydantic model read from YAML, whose errors name the file, line and key.

```yaml
protected: [production]                       # aliases this policy guards once attached to a model
data:      {dataset: churn-test@v2, label: churned, suite: expectations.yaml}
metrics:   {roc_auc: {min: 0.80}, f1: {min: 0.70}}
champion:  {alias: production, roc_auc: {max_drop: 0.005}, relative: false, if_missing: pass}
slices:    {plan: {roc_auc: {min: 0.75}}}     # no slice of `plan` may fall below
latency:   {p95_ms: {max: 20}, batch: 1}      # measured on the loaded model
behavior:  {invariance: [{column: customer_id}], monotonic: [{column: tenure, direction: decreasing}]}
```
"""

from __future__ import annotations

import difflib
import hashlib
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelyard._yaml import compose_yaml, load_yaml, read_yaml_text
from modelyard.errors import InvalidArgumentError, PolicyError, did_you_mean
from modelyard.evaluation._metrics import METRICS, TASKS, closest_metric, metric_spec

__all__ = [
    "Bound",
    "ChampionChange",
    "GatePolicy",
    "PolicyError",
    "load_policy",
    "parse_policy",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Bound(_Strict):
    """A value threshold: ``{min: 0.8}``, ``{max: 20}`` or both."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)

    def holds(self, value: float) -> bool:
        if value != value:  # NaN never passes
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class ChampionChange(_Strict):
    """How a metric may change against the champion: ``{max_drop: 0.005}`` or ``{min_gain: 0.01}``."""

    max_drop: float | None = Field(default=None, ge=0)
    min_gain: float | None = None
    relative: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> ChampionChange:
        if (self.max_drop is None) == (self.min_gain is None):
            raise ValueError("give exactly one of max_drop or min_gain")
        return self


class DataGate(_Strict):
    """The evaluation data, and the validation suite it must pass."""

    dataset: str | None = None
    label: str | None = None
    slices: list[str] = Field(default_factory=list)
    #: an expectation suite: a YAML file's path, or the suite itself (a mapping: how a policy attached
    #: through a server carries it, since the server reads no file a client names)
    suite: str | dict[str, Any] | None = None


class ChampionGate(BaseModel):
    """Compare with the current holder of ``alias``; other keys are metric names."""

    model_config = ConfigDict(extra="allow")

    alias: str = "production"
    relative: bool = False
    if_missing: Literal["pass", "fail"] = "pass"

    def changes(self) -> dict[str, ChampionChange]:
        return dict(self.__pydantic_extra__ or {})


class SliceFloor(BaseModel):
    """Per slice column: metric bounds every slice must meet; slices under ``min_rows`` are skipped."""

    model_config = ConfigDict(extra="allow")

    min_rows: int = Field(default=30, ge=1)

    def bounds(self) -> dict[str, Bound]:
        return dict(self.__pydantic_extra__ or {})


class LatencyGate(_Strict):
    """Prediction latency of the loaded model on ``batch`` rows, over ``runs`` calls after ``warmup``."""

    p50_ms: Bound | None = None
    p95_ms: Bound | None = None
    p99_ms: Bound | None = None
    batch: int = Field(default=1, ge=1)
    runs: int = Field(default=100, ge=5, le=100_000)
    warmup: int = Field(default=5, ge=0)
    max_seconds: float = Field(default=10.0, gt=0)


class Invariance(_Strict):
    """Predictions must not change when ``column`` is perturbed."""

    column: str
    perturb: Literal["shuffle", "constant", "noise"] = "shuffle"
    value: Any = None
    scale: float = Field(default=0.1, gt=0)
    tolerance: float = Field(default=1e-9, ge=0)
    max_fraction: float = Field(default=0.0, ge=0, le=1)


class Monotonic(_Strict):
    """Raising ``column`` by ``delta`` must move the score in ``direction``."""

    column: str
    direction: Literal["increasing", "decreasing"]
    delta: float | None = None
    tolerance: float = Field(default=1e-9, ge=0)
    max_fraction: float = Field(default=0.0, ge=0, le=1)
    output_class: str | None = Field(default=None, alias="class")


class BehaviorGate(_Strict):
    """Behavioral checks on a sample of the evaluation rows."""

    rows: int = Field(default=500, ge=1, le=1_000_000)
    seed: int = 0
    invariance: list[Invariance] = Field(default_factory=list)
    monotonic: list[Monotonic] = Field(default_factory=list)


class GatePolicy(_Strict):
    """Every gate a model must pass. Parsed from YAML by :func:`load_policy`."""

    protected: list[str] = Field(default_factory=lambda: ["production"])
    task: Literal["binary", "multiclass", "regression"] | None = None
    data: DataGate = Field(default_factory=DataGate)
    metrics: dict[str, Bound] = Field(default_factory=dict)
    champion: ChampionGate | None = None
    slices: dict[str, SliceFloor] = Field(default_factory=dict)
    latency: LatencyGate | None = None
    behavior: BehaviorGate | None = None
    #: let the gates load ``pyfunc`` (cloudpickle) versions, which runs code from the store: set it
    #: only if you trust whoever can register versions of the model
    allow_pickle: bool = False

    #: where the policy came from and the line of each key, for messages
    _source: str = "<policy>"
    _base: Path | None = None
    #: False: the policy came from a client of a server; paths in it are never opened (see files_refused)
    _files: bool = True
    _text: str = ""
    _lines: dict[tuple[str, ...], int] = {}

    @property
    def source(self) -> str:
        return self._source

    @property
    def text(self) -> str:
        return self._text

    @property
    def digest(self) -> str:
        return hashlib.sha256(self._text.encode()).hexdigest()

    def where(self, *path: str) -> str:
        """``gates.yaml:4: metrics.roc_auc`` for messages about the key at ``path``."""
        line = _line_of(self._lines, tuple(path))
        dotted = ".".join(path)
        return f"{self._source}:{line}: {dotted}" if line else f"{self._source}: {dotted}"

    @property
    def reads_files(self) -> bool:
        """Whether the gates may open files the policy names (not on a server: see :func:`parse_policy`)."""
        return self._files

    def files_refused(self, *key: str) -> InvalidArgumentError:
        """The error for a file path at ``key`` of a policy whose files may not be read."""
        return InvalidArgumentError(
            f"{self.where(*key)}: this policy's gates run on a modelyard server, which never opens a file "
            "a client names (its own files are not the client's, and reading them would let any "
            "maintainer read the server's disk). Name a registered dataset (NAME@VERSION; "
            "`yard data add`) and attach the policy again with `yard policy attach` from the folder "
            "of its files: a suite file is then sent inline."
        )

    def resolve_path(self, value: str, *key: str) -> str:
        """A path in the policy (at ``key``), relative to the policy file's folder."""
        if not self._files:
            raise self.files_refused(*key)
        p = Path(value).expanduser()
        if not p.is_absolute() and self._base is not None and (self._base / p).exists():
            return str(self._base / p)
        return str(p)

    def metric_names(self) -> list[str]:
        """Every metric some gate names, in order."""
        out: list[str] = []
        for name in [
            *self.metrics,
            *(self.champion.changes() if self.champion else {}),
            *(m for f in self.slices.values() for m in f.bounds()),
        ]:
            if name not in out:
                out.append(name)
        return out

    def check_task(self, task: str) -> None:
        """Raise when a named metric does not fit ``task``, naming the policy line."""
        for name in self.metrics:
            metric_spec(name, task, where=self.where("metrics", name))
        for name in self.champion.changes() if self.champion else {}:
            metric_spec(name, task, where=self.where("champion", name))
        for col, floor in self.slices.items():
            for name in floor.bounds():
                metric_spec(name, task, where=self.where("slices", col, name))
        for i, m in enumerate(self.behavior.monotonic if self.behavior else []):
            if task == "multiclass" and m.output_class is None:
                raise InvalidArgumentError(
                    f"{self.where('behavior', 'monotonic', str(i))}: a multiclass model has one "
                    f"score per class; "
                    "name the class whose probability must move with 'class: <label>'."
                )


# -- YAML with line numbers ----------------------------------------------------------------


def _line_map(node: Any, path: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            p = (*path, str(key.value))
            out[p] = key.start_mark.line + 1
            _line_map(value, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            p = (*path, str(i))
            out[p] = item.start_mark.line + 1
            _line_map(item, p, out)


def _line_of(lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes reachable from a field annotation (through Optional, list, dict)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in _unwrap(a)]
    if origin in (list, dict):
        return _unwrap(typing.get_args(annotation)[-1])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that holds the key at ``loc`` (for did-you-mean)."""
    models: list[type[BaseModel]] = [GatePolicy]
    for part in loc[:-1]:
        nxt: list[type[BaseModel]] = []
        for m in models:
            f = m.model_fields.get(str(part))
            if f is not None:
                nxt.extend(_unwrap(f.annotation))
        if nxt:
            models = nxt
        elif isinstance(part, int) or not nxt:
            continue
    names: list[str] = []
    for m in models:
        for name, f in m.model_fields.items():
            names.append(f.alias or name)
    return names


def _problems_from(
    exc: ValidationError, source: str, lines: dict[tuple[str, ...], int], prefix: tuple[str, ...] = ()
) -> list[str]:
    out = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        # pydantic reports the failing member of a union or a model's "after" check under the field
        loc = tuple(
            p for p in loc if not (isinstance(p, str) and (p.startswith("function-after") or "[" in p))
        )
        path = tuple(str(p) for p in loc)
        line = _line_of(lines, path)
        where = f"{source}:{line}" if line else source
        key = ".".join(path) or "(top level)"
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(str(loc[-1]), _fields_at(loc))
            allowed = ", ".join(_fields_at(loc))
            out.append(f"{where}: {key}: unknown key {str(loc[-1])!r}.{hint} Allowed keys here: {allowed}.")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
            out.append(f"{where}: {key}: {msg}{shown}.")
    return out


def _check_metric_keys(raw: dict[str, Any], source: str, lines: dict[tuple[str, ...], int]) -> list[str]:
    """Metric names (keys of metrics/champion/slices.*) must be known metrics.

    A typo is matched against the metrics that fit the policy's ``task`` (all when it names none)
    and their scikit-learn names, and against the other keys allowed at that place.
    """
    problems = []
    task = raw.get("task") if raw.get("task") in TASKS else None

    def check(path: tuple[str, ...], name: str, fields: list[str]) -> None:
        if name in METRICS:
            return
        line = _line_of(lines, (*path, name))
        where = f"{source}:{line}" if line else source
        metric = closest_metric(name, task)
        field = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
        key = ".".join((*path, name))
        if field and (metric is None or difflib.SequenceMatcher(None, name, field[0]).ratio() >= metric[1]):
            problems.append(
                f"{where}: {key}: unknown key {name!r}. Did you mean {field[0]!r}? "
                f"Allowed keys here: {', '.join(fields)} and metric names."
            )
        elif metric is not None:
            problems.append(f"{where}: {key}: unknown metric {name!r}. Did you mean {metric[0]!r}?")
        else:
            known = [n for n, s in METRICS.items() if task in s.tasks] if task else sorted(METRICS)
            what = f"Metrics for {task}" if task else "Known metrics"
            problems.append(f"{where}: {key}: unknown metric {name!r}. {what}: {', '.join(known)}.")

    metrics = raw.get("metrics")
    if isinstance(metrics, dict):
        for name in metrics:
            check(("metrics",), str(name), [])
    champion = raw.get("champion")
    if isinstance(champion, dict):
        fixed = list(ChampionGate.model_fields)
        for name in champion:
            if str(name) not in fixed:
                check(("champion",), str(name), fixed)
    slices = raw.get("slices")
    if isinstance(slices, dict):
        for col, floor in slices.items():
            if isinstance(floor, dict):
                for name in floor:
                    if str(name) not in SliceFloor.model_fields:
                        check(("slices", str(col)), str(name), list(SliceFloor.model_fields))
    return problems


def parse_policy(
    text: str, *, source: str = "<policy>", base: str | os.PathLike[str] | None = None, files: bool = True
) -> GatePolicy:
    """Parse a gate policy from YAML ``text``; every problem is reported with its line.

    ``files=False`` (a policy a server runs for a client): its gates never open a file it names,
    neither relative to ``base`` nor absolute; the data must be a registered dataset and the suite
    inline."""
    try:
        node = compose_yaml(text, what="gate policy", name=source)
        raw = load_yaml(text, what="gate policy", name=source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if context and context_mark is not None:  # the construct left open is where the mistake is
            where = f"{source}:{context_mark.line + 1}"
            detail = f"{context} started here: {problem}" + (
                f" on line {mark.line + 1}" if mark is not None else ""
            )
        else:
            where = f"{source}:{mark.line + 1}" if mark is not None else source
            detail = problem
        raise PolicyError([f"{where}: not valid YAML: {detail}."], source) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(
            [f"{source}:1: a gate policy is a mapping of gates (metrics:, champion:, ...)."], source
        )
    lines: dict[tuple[str, ...], int] = {}
    _line_map(node, (), lines)
    problems = _check_metric_keys(raw, source, lines)

    def sub(model: type[BaseModel], value: Any, path: tuple[str, ...]) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, source, lines, prefix=path))
            return None

    # the metric-keyed entries of champion: and slices.<column>: are checked with their own models
    champion = raw.get("champion")
    if isinstance(champion, dict):
        for name, value in champion.items():
            if str(name) in METRICS:
                champion[name] = sub(ChampionChange, value, ("champion", str(name)))
    slices = raw.get("slices")
    if isinstance(slices, dict):
        for col, floor in slices.items():
            if isinstance(floor, dict):
                for name, value in floor.items():
                    if str(name) in METRICS:
                        floor[name] = sub(Bound, value, ("slices", str(col), str(name)))
    try:
        policy = GatePolicy.model_validate(raw)
    except ValidationError as exc:
        problems += [p for p in _problems_from(exc, source, lines) if p not in problems]
    if problems:

        def line(p: str) -> int:
            rest = p[len(source) + 1 :].split(":", 1)[0]
            return int(rest) if rest.isdigit() else 0

        raise PolicyError(sorted(problems, key=line), source)
    policy._source = source
    policy._base = Path(base) if base is not None and files else None
    policy._files = files
    policy._text = text
    policy._lines = lines
    if policy.task is not None:
        policy.check_task(policy.task)
    for col in policy.slices:
        if ":" in col and not col.split(":", 1)[1].isdigit():
            raise PolicyError(
                [f"{policy.where('slices', col)}: bins after ':' must be a number (for example tenure:4)."],
                source,
            )
    return policy


def load_policy(path: str | os.PathLike[str]) -> GatePolicy:
    """Read a gate policy file (YAML); errors name the file, the line and the key."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidArgumentError(f"The gate policy file {str(path)!r} does not exist.")
    return parse_policy(read_yaml_text(p, what="gate policy"), source=str(path), base=p.resolve().parent)
