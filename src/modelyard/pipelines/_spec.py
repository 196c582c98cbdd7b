"""``@yard.step`` and ``@yard.pipeline``: decorators that only annotate the function.

A step stays a plain Python function: calling it runs its body, so it can be unit-tested
as is. ``@yard.step`` stores a :class:`StepSpec` on ``fn.__yard_step__`` and returns ``fn``.
``@yard.pipeline`` stores a :class:`PipelineSpec` on ``fn.__yard_pipeline__`` and adds the
verbs ``fn.run``, ``fn.status`` and ``fn.graph`` (plain attributes of the same function);
calling ``fn(...)`` directly still runs every step eagerly, untracked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from modelyard.errors import InvalidArgumentError, invalid_param

__all__ = ["PipelineSpec", "StepSpec", "get_pipeline_spec", "get_step_spec", "pipeline", "step"]

F = TypeVar("F", bound=Callable[..., Any])

#: Keys of ``resources`` understood by every executor (Ray takes any custom key too).
RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory")


@dataclass(frozen=True)
class StepSpec:
    """What ``@yard.step(...)`` declared about a function."""

    name: str
    retries: int = 0
    resources: Mapping[str, float] = field(default_factory=dict)
    cache: bool = True
    serializer: str | None = None
    env: tuple[str, ...] = ()
    allow_pickle: bool = False


@dataclass(frozen=True)
class PipelineSpec:
    """What ``@yard.pipeline(...)`` declared about a function."""

    name: str
    experiment: str


def _check_step_options(
    name: str | None, retries: Any, resources: Any, cache: Any, serializer: Any, env: Any, allow_pickle: Any
) -> None:
    caller = "yard.step"
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise invalid_param("name", caller, "a non-empty string", name)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise invalid_param("retries", caller, "an int in the range [0, inf)", retries)
    if not isinstance(resources, Mapping) or not all(isinstance(k, str) for k in resources):
        raise invalid_param("resources", caller, "a mapping like {'num_cpus': 1, 'num_gpus': 0}", resources)
    for k, v in resources.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise invalid_param(f"resources[{k!r}]", caller, "a number >= 0", v)
    if not isinstance(cache, bool):
        raise invalid_param("cache", caller, "True or False", cache)
    if serializer is not None:
        from modelyard.pipelines._serializers import SERIALIZERS

        if serializer not in SERIALIZERS:
            from modelyard.errors import did_you_mean

            raise InvalidArgumentError(
                f"The 'serializer' parameter of {caller} must be one of {sorted(SERIALIZERS)}. "
                f"Got {serializer!r} instead.{did_you_mean(str(serializer), SERIALIZERS)}"
            )
    if isinstance(env, str) or not isinstance(env, Sequence) or not all(isinstance(e, str) for e in env):
        raise invalid_param("env", caller, "a list of package names, e.g. ['scikit-learn', 'pandas']", env)
    if not isinstance(allow_pickle, bool):
        raise invalid_param("allow_pickle", caller, "True or False", allow_pickle)
    if serializer == "cloudpickle" and not allow_pickle:
        raise InvalidArgumentError(
            f"{caller} declares serializer='cloudpickle', whose outputs run code when they are loaded; "
            "pass allow_pickle=True as well to say so."
        )


@overload
def step(fn: F, /) -> F: ...
@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    resources: Mapping[str, float] | None = None,
    cache: bool = True,
    serializer: str | None = None,
    env: Sequence[str] = (),
    allow_pickle: bool = False,
) -> Callable[[F], F]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    resources: Mapping[str, float] | None = None,
    cache: bool = True,
    serializer: str | None = None,
    env: Sequence[str] = (),
    allow_pickle: bool = False,
) -> Any:
    """Mark a function as a pipeline step; the function itself is returned unchanged.

    ``retries``: extra attempts when the body raises. ``resources``: e.g. ``{"num_cpus": 2,
    "num_gpus": 1}`` (Ray resources; the process executor counts ``num_cpus`` against its
    workers). ``cache=False`` always reruns. ``serializer`` forces one entry of
    :data:`~modelyard.pipelines.SERIALIZERS` for the output; ``allow_pickle=True`` lets an
    output no safe serializer handles fall back to cloudpickle. ``env``: package names whose
    installed versions are part of the cache key.
    """
    resources = dict(resources or {})
    _check_step_options(name, retries, resources, cache, serializer, env, allow_pickle)

    def mark(f: F) -> F:
        if not callable(f) or not hasattr(f, "__code__"):
            raise invalid_param("fn", "yard.step", "a plain function defined with def", f)
        f.__yard_step__ = StepSpec(  # type: ignore[attr-defined]
            name=name or f.__name__,
            retries=retries,
            resources=resources,
            cache=cache,
            serializer=serializer,
            env=tuple(env),
            allow_pickle=allow_pickle,
        )
        f.map = functools.partial(_eager_map, f)  # type: ignore[attr-defined]
        return f

    return mark(fn) if fn is not None else mark


def _eager_map(fn: Callable[..., Any], items: Sequence[Any], /, **kwargs: Any) -> list[Any]:
    """``step.map(items, **kw)`` outside a pipeline run: ``[step(x, **kw) for x in items]``."""
    return [fn(x, **kwargs) for x in items]


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, experiment: str | None = None, name: str | None = None
) -> Any:
    """Mark a function whose step calls form a pipeline; the function is returned with verbs added.

    ``pipe.run(params..., executor="process")`` runs it as a tracked, cached DAG;
    ``pipe.status(...)`` says which steps would run and why; ``pipe.graph(...)`` is the DAG.
    """
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise invalid_param("experiment", "yard.pipeline", "a non-empty string", experiment)
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise invalid_param("name", "yard.pipeline", "a non-empty string", name)

    def mark(f: F) -> F:
        if not callable(f) or not hasattr(f, "__code__"):
            raise invalid_param("fn", "yard.pipeline", "a plain function defined with def", f)
        pname = name or f.__name__
        f.__yard_pipeline__ = PipelineSpec(name=pname, experiment=experiment or pname)  # type: ignore[attr-defined]
        from modelyard.pipelines import _runner

        f.run = functools.partial(_runner.run_pipeline, f)  # type: ignore[attr-defined]
        f.status = functools.partial(_runner.pipeline_status, f)  # type: ignore[attr-defined]
        f.graph = functools.partial(_runner.build_graph_for, f)  # type: ignore[attr-defined]
        return f

    return mark(fn) if fn is not None else mark


def get_step_spec(obj: Any) -> StepSpec | None:
    """The :class:`StepSpec` of a function marked with ``@yard.step`` (None otherwise)."""
    spec = getattr(obj, "__yard_step__", None)
    return spec if isinstance(spec, StepSpec) else None


def get_pipeline_spec(obj: Any) -> PipelineSpec:
    """The :class:`PipelineSpec` of a ``@yard.pipeline`` function; InvalidArgumentError otherwise."""
    spec = getattr(obj, "__yard_pipeline__", None)
    if not isinstance(spec, PipelineSpec):
        raise InvalidArgumentError(
            f"{getattr(obj, '__name__', obj)!r} is not a pipeline. Decorate the function with "
            "@yard.pipeline(experiment=...)."
        )
    return spec
