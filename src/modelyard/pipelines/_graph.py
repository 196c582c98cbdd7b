"""Build the DAG of a pipeline from the data flow of its step calls.

The pipeline function runs once with its step names (globals and closure cells) rebound to
tracers: a step call records a :class:`Node` and returns a :class:`Ref` to the node's output
instead of running the body. A node depends on the nodes whose refs appear in its arguments
(also inside lists, tuples and dicts), so a ref can only point at an earlier call and the
graph is acyclic by construction; :meth:`Graph.order` still checks it.
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modelyard.errors import InvalidArgumentError, did_you_mean
from modelyard.pipelines._spec import StepSpec, get_pipeline_spec, get_step_spec

__all__ = ["DatasetInput", "Graph", "Node", "Ref", "build_graph", "dataset", "iter_datasets", "iter_refs"]

T = TypeVar("T")


class Ref:
    """The future output of a step inside a pipeline being built (not a value)."""

    __slots__ = ("node_id",)

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    def __repr__(self) -> str:
        return f"<output of step {self.node_id!r}>"

    def _misuse(self, *_: Any, **__: Any) -> Any:
        raise InvalidArgumentError(
            f"{self!r} is a reference while the pipeline is being built, not a value: pass it to "
            "another step, and do the computation inside a @yard.step function."
        )

    __bool__ = __iter__ = __len__ = __getitem__ = __getattr__ = __call__ = _misuse
    __add__ = __sub__ = __mul__ = __truediv__ = __lt__ = __gt__ = __le__ = __ge__ = _misuse
    __radd__ = __rmul__ = __float__ = __int__ = __index__ = _misuse

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.node_id == self.node_id

    def __hash__(self) -> int:
        return hash(("Ref", self.node_id))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Ref, (self.node_id,))


class DatasetInput:
    """A dataset version as a step argument; see :func:`dataset`."""

    __slots__ = ("columns", "engine", "ref")

    def __init__(self, ref: str, engine: str = "pandas", columns: Sequence[str] | None = None) -> None:
        self.ref = ref
        self.engine = engine
        self.columns = list(columns) if columns is not None else None

    def __repr__(self) -> str:
        return f"<dataset {self.ref}>"

    def describe(self) -> dict[str, Any]:
        return {"$dataset": self.ref, "engine": self.engine, "columns": self.columns}


def dataset(ref: str, *, engine: str = "pandas", columns: Sequence[str] | None = None) -> DatasetInput:
    """Pass dataset version ``ref`` (``"churn-train@latest"``, ``"churn-train@v3"``) to a step.

    The step receives the loaded frame (``engine``: pandas, polars or arrow). The cache key holds
    the version's content digest, so ``@latest`` moving to a new version reruns the step, and the
    step's run records the version as an input (lineage).
    """
    from modelyard.errors import invalid_param

    if not isinstance(ref, str) or not ref.strip():
        raise invalid_param("ref", "yard.pipelines.dataset", "a dataset reference like 'churn-train@v3'", ref)
    if engine not in ("pandas", "polars", "arrow"):
        raise invalid_param("engine", "yard.pipelines.dataset", "one of 'pandas', 'polars', 'arrow'", engine)
    if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
        raise invalid_param("columns", "yard.pipelines.dataset", "a list of column names", columns)
    return DatasetInput(ref, engine, columns)


def _iter_instances(value: Any, kind: type[T]) -> Iterator[T]:
    """Every ``kind`` inside ``value`` (lists, tuples, dicts, nested), in order."""
    if isinstance(value, kind):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _iter_instances(v, kind)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _iter_instances(v, kind)


def iter_datasets(value: Any) -> Iterator[DatasetInput]:
    """Every :class:`DatasetInput` inside ``value`` (lists, tuples, dicts, nested)."""
    return _iter_instances(value, DatasetInput)


def iter_refs(value: Any) -> Iterator[Ref]:
    """Every :class:`Ref` inside ``value`` (lists, tuples, dicts, nested)."""
    return _iter_instances(value, Ref)


def substitute(
    value: Any, resolve: Callable[[Ref], Any], resolve_dataset: Callable[[DatasetInput], Any] | None = None
) -> Any:
    """``value`` with every Ref replaced by ``resolve(ref)`` (and datasets by ``resolve_dataset``)."""
    if isinstance(value, Ref):
        return resolve(value)
    if isinstance(value, DatasetInput):
        return resolve_dataset(value) if resolve_dataset is not None else value.describe()
    if isinstance(value, list):
        return [substitute(v, resolve, resolve_dataset) for v in value]
    if isinstance(value, tuple):
        return tuple(substitute(v, resolve, resolve_dataset) for v in value)
    if isinstance(value, dict):
        return {k: substitute(v, resolve, resolve_dataset) for k, v in value.items()}
    return value


@dataclass
class Node:
    """One step call: the function, its bound arguments and the nodes it reads."""

    id: str
    fn: Callable[..., Any]
    spec: StepSpec
    arguments: dict[str, Any]
    upstream: list[str] = field(default_factory=list)

    @property
    def step(self) -> str:
        return self.spec.name


@dataclass
class Graph:
    """The DAG of one pipeline call: nodes in call order, params, and the returned refs."""

    pipeline: str
    experiment: str
    params: dict[str, Any]
    nodes: dict[str, Node]
    outputs: Any = None

    def order(self) -> list[str]:
        """Node ids in a topological order (call order, checked)."""
        seen: set[str] = set()
        for nid, node in self.nodes.items():
            for up in node.upstream:
                if up not in seen:
                    raise InvalidArgumentError(
                        f"Pipeline {self.pipeline!r} has a cycle through step {nid!r} and {up!r}."
                    )
            seen.add(nid)
        return list(self.nodes)

    def downstream(self, node_ids: Sequence[str]) -> set[str]:
        """``node_ids`` and every node that reads from them, transitively."""
        out = set(node_ids)
        for nid, node in self.nodes.items():
            if any(u in out for u in node.upstream):
                out.add(nid)
        return out

    def select(self, names: Sequence[str]) -> list[str]:
        """Node ids for step or node names (``--force train``); unknown names raise with a hint."""
        found: list[str] = []
        for name in names:
            hits = [nid for nid, n in self.nodes.items() if nid == name or n.step == name]
            if not hits:
                known = sorted({n.step for n in self.nodes.values()} | set(self.nodes))
                raise InvalidArgumentError(
                    f"Pipeline {self.pipeline!r} has no step {name!r}.{did_you_mean(name, known)} "
                    f"Its steps: {', '.join(known)}."
                )
            found.extend(hits)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "experiment": self.experiment,
            "params": self.params,
            "nodes": [
                {"id": nid, "step": n.step, "upstream": n.upstream, "function": _qualname(n.fn)}
                for nid, n in self.nodes.items()
            ],
        }


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', getattr(fn, '__name__', '?'))}"


class _Tracer:
    """Stands in for a step function while the pipeline function is traced."""

    def __init__(self, builder: _Builder, fn: Callable[..., Any], spec: StepSpec) -> None:
        self._builder = builder
        self._fn = fn
        self._spec = spec
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Ref:
        return self._builder.add(self._fn, self._spec, args, kwargs)

    def map(self, items: Any, /, **kwargs: Any) -> list[Ref]:
        """Fan out: one node per item, ``step(item, **kwargs)``; returns a list of refs."""
        if isinstance(items, Ref):
            raise InvalidArgumentError(
                f"{self._spec.name}.map() needs a list known when the pipeline is built (a param or a "
                f"literal). Got {items!r}; to fan out over a step's output, return the items from a "
                "step and map inside it, or pass the list as a pipeline param."
            )
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise InvalidArgumentError(
                f"{self._spec.name}.map() takes a list or tuple of items. Got {type(items).__name__} instead."
            )
        return [
            self._builder.add(self._fn, self._spec, (item,), kwargs, index=i) for i, item in enumerate(items)
        ]


class _Builder:
    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        self.nodes: dict[str, Node] = {}
        self.counts: dict[str, int] = {}
        self.signatures: dict[int, inspect.Signature] = {}

    def add(
        self,
        fn: Callable[..., Any],
        spec: StepSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        index: int | None = None,
    ) -> Ref:
        sig = self.signatures.get(id(fn))
        if sig is None:
            sig = self.signatures[id(fn)] = inspect.signature(fn)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(
                f"Step {spec.name!r} was called with arguments that do not match its signature "
                f"{spec.name}{inspect.signature(fn)}: {exc}."
            ) from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        if index is not None:
            nid = f"{spec.name}[{index}]"
            n = 1
            while nid in self.nodes:
                n += 1
                nid = f"{spec.name}_{n}[{index}]"
        else:
            n = self.counts.get(spec.name, 0) + 1
            self.counts[spec.name] = n
            nid = spec.name if n == 1 else f"{spec.name}_{n}"
        for name, value in arguments.items():
            _check_argument(spec.name, name, value)
        upstream: list[str] = []
        for ref in iter_refs(arguments):
            if ref.node_id not in self.nodes:
                raise InvalidArgumentError(
                    f"{ref!r} passed to step {spec.name!r} belongs to another pipeline."
                )
            if ref.node_id not in upstream:
                upstream.append(ref.node_id)
        self.nodes[nid] = Node(id=nid, fn=fn, spec=spec, arguments=arguments, upstream=upstream)
        return Ref(nid)


def _check_argument(step: str, name: str, value: Any) -> None:
    """Arguments are refs or plain data (they enter the cache key as JSON)."""
    plain = substitute(value, lambda r: None)
    try:
        json.dumps(plain, allow_nan=True, sort_keys=True)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"The argument {name!r} of step {step!r} is a {type(value).__name__}, which cannot be part of a "
            "cache key. Pass plain data (str, int, float, bool, None, lists and dicts of them) or the output "
            "of another step or yard.pipelines.dataset('name@vN'); load bigger objects inside a step."
        ) from None


def _rebind(fn: types.FunctionType, tracers: Mapping[int, Any]) -> types.FunctionType:
    """A copy of ``fn`` whose globals and closure cells see tracers instead of step functions."""
    g = dict(fn.__globals__)
    for k, v in fn.__globals__.items():
        if id(v) in tracers:
            g[k] = tracers[id(v)]
    closure = None
    if fn.__closure__:
        cells = []
        for cell in fn.__closure__:
            try:
                v = cell.cell_contents
            except ValueError:  # empty cell
                cells.append(cell)
                continue
            cells.append(types.CellType(tracers.get(id(v), v)))
        closure = tuple(cells)
    new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    return new


def _step_candidates(fn: types.FunctionType) -> list[Any]:
    found = [v for v in fn.__globals__.values() if get_step_spec(v) is not None]
    for cell in fn.__closure__ or ():
        try:
            v = cell.cell_contents
        except ValueError:
            continue
        if get_step_spec(v) is not None:
            found.append(v)
    return found


def pipeline_params(fn: Callable[..., Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline function's params: defaults overlaid with ``given``; unknown or missing ones raise."""
    spec = get_pipeline_spec(fn)
    sig = inspect.signature(fn)
    names = [p.name for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    for k in given:
        if k not in names:
            raise InvalidArgumentError(
                f"Pipeline {spec.name!r} has no param {k!r}.{did_you_mean(k, names)} "
                f"Its params: {', '.join(names) or '(none)'}."
            )
    out: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.name in given:
            out[p.name] = given[p.name]
        elif p.default is not inspect.Parameter.empty:
            out[p.name] = p.default
        elif p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        else:
            raise InvalidArgumentError(
                f"Pipeline {spec.name!r} needs a value for param {p.name!r}: pass it as "
                f"{spec.name}.run({p.name}=...) or `--param {p.name}=...`."
            )
    return out


def build_graph(fn: Callable[..., Any], params: Mapping[str, Any] | None = None) -> Graph:
    """Trace a ``@yard.pipeline`` function with ``params`` into a :class:`Graph` (no step runs)."""
    spec = get_pipeline_spec(fn)
    values = pipeline_params(fn, dict(params or {}))
    builder = _Builder(spec.name)
    tracers = {id(s): _Tracer(builder, s, get_step_spec(s)) for s in _step_candidates(fn)}  # type: ignore[arg-type]
    traced = _rebind(fn, tracers)  # type: ignore[arg-type]
    result = traced(**values)
    if not builder.nodes:
        raise InvalidArgumentError(
            f"Pipeline {spec.name!r} calls no step. Decorate its functions with @yard.step and call them "
            "by name inside the pipeline function."
        )
    graph = Graph(
        pipeline=spec.name, experiment=spec.experiment, params=values, nodes=builder.nodes, outputs=result
    )
    graph.order()
    return graph
