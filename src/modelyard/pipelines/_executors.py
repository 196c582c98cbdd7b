"""Executors: where steps run. A visible name → implementation table.

Every executor takes a :class:`~modelyard.pipelines._worker.StepTask` plus the in-memory
handles of its inputs and returns a ``concurrent.futures.Future`` of a ``(StepResult,
handle)`` pair; the driver's scheduler is the same for all of them, so cache keys and
results are the same on all three.

``local``    in this process, one step at a time (for debugging; values passed in memory)
``process``  a pool of spawned worker processes (default when the machine has > 1 core);
             inputs pass through the blob store
``ray``      each step a Ray task; outputs passed to downstream tasks as object refs; step
             ``resources`` become Ray resources. Connects to ``RAY_ADDRESS`` (or ``address=``),
             else starts a local Ray.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

from modelyard.errors import ConfigError, InvalidArgumentError, did_you_mean
from modelyard.pipelines._worker import StepResult, StepTask, execute, run_payload, run_payload_ray

__all__ = ["EXECUTORS", "Executor", "default_executor", "make_executor"]

#: Executor name → "module:Class".
EXECUTORS: dict[str, str] = {
    "local": "modelyard.pipelines._executors:LocalExecutor",
    "process": "modelyard.pipelines._executors:ProcessExecutor",
    "ray": "modelyard.pipelines._executors:RayExecutor",
}


def default_executor() -> str:
    """``process`` when the machine has more than one core, else ``local``."""
    return "process" if (os.cpu_count() or 1) > 1 else "local"


def _by_value(modules: set[str]) -> None:
    """Ship the user's own modules by value, so workers need not import them by path."""
    import cloudpickle

    for name in modules:
        mod = sys.modules.get(name)
        if isinstance(mod, types.ModuleType) and name != "__main__":
            try:
                cloudpickle.register_pickle_by_value(mod)
            except ValueError:  # pragma: no cover - already registered or not importable
                pass


class Executor:
    """Runs step tasks; ``slots`` is how many may run at once."""

    name = ""
    slots = 1

    def submit(self, task: StepTask, inputs: dict[str, Any], resources: dict[str, float]) -> Future[Any]:
        raise NotImplementedError

    def prepare(self, user_modules: set[str]) -> None:
        """Called once before the first submit."""

    def close(self) -> None:
        """Release workers."""


class LocalExecutor(Executor):
    """Steps run in this process, one at a time."""

    name = "local"

    def submit(self, task: StepTask, inputs: dict[str, Any], resources: dict[str, float]) -> Future[Any]:
        fut: Future[Any] = Future()
        res = execute(task, {k: v for k, v in inputs.items() if v is not None}, keep_value=True)
        value, res.value = res.value, None
        fut.set_result((res, value if res.ok else None))
        return fut


#: Worker pools kept warm between runs of this process (spawning a worker costs seconds).
_POOLS: dict[int, Any] = {}
_POOLS_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start spawned workers without re-running the user's script in each of them.

    ``spawn`` re-imports ``__main__`` from its path in every worker (a script without an
    ``if __name__ == "__main__"`` guard would run again there). Step functions travel by value,
    so workers never need it: hide the path while the workers start.
    """
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    try:
        for k in saved:
            if k == "__file__":
                delattr(main, k)
            else:
                setattr(main, k, None)
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


def _pool(workers: int) -> Any:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None or getattr(pool, "_broken", False) or getattr(pool, "_shutdown_thread", False):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            pool = _POOLS[workers] = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")
            )
        return pool


def shutdown_pools() -> None:
    """Stop the warm worker processes (also done at interpreter exit)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)


class ProcessExecutor(Executor):
    """Steps run in a pool of spawned processes (``workers``, default: the number of cores).

    The pool stays up between runs of the same process (``shutdown_pools()`` stops it), so a
    second run does not pay for starting Python and importing pandas again.
    """

    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.slots = workers or os.cpu_count() or 1
        self._pool: Any = None
        self._modules: set[str] = set()

    def prepare(self, user_modules: set[str]) -> None:
        self._modules = user_modules

    def submit(self, task: StepTask, inputs: dict[str, Any], resources: dict[str, float]) -> Future[Any]:
        import cloudpickle

        if self._pool is None:
            _by_value(self._modules)
            self._pool = _pool(self.slots)
        out: Future[Any] = Future()
        try:
            payload = cloudpickle.dumps(task)
            with _main_hidden():  # workers start on the first submits
                inner = self._pool.submit(run_payload, payload)
        except Exception as exc:
            out.set_result((_crashed(task, exc), None))
            return out

        def done(f: Future[Any]) -> None:
            try:
                out.set_result((f.result(), None))
            except BaseException as exc:  # the worker died (BrokenProcessPool...)
                out.set_result((_crashed(task, exc), None))

        inner.add_done_callback(done)
        return out

    def close(self) -> None:
        self._pool = None  # the pool stays warm for the next run; see shutdown_pools()


def _crashed(task: StepTask, exc: BaseException) -> StepResult:
    return StepResult(
        node=task.node, ok=False, error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__
    )


class RayExecutor(Executor):
    """Each step is a Ray task; outputs travel between tasks as object refs."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "The 'ray' executor needs Ray, which is not installed. Install it with `pip "
                "install 'ray[default]'`, "
                "or use executor='process'."
            ) from None
        self._ray: Any = ray  # Ray's own annotations are partial (cluster_resources has none)
        self._address = address or os.environ.get("RAY_ADDRESS")
        self._modules: set[str] = set()
        self._remote: Any = None
        self._connect()
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        self.slots = workers or max(1, cpus)

    def _connect(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        try:
            if self._address:
                ray.init(address=self._address, logging_level="ERROR", log_to_driver=False)
            else:  # a local Ray: its workers import this very modelyard
                src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
                ray.init(
                    logging_level="ERROR",
                    log_to_driver=False,
                    include_dashboard=False,
                    runtime_env={"env_vars": {"PYTHONPATH": path}},
                )
        except Exception as exc:
            where = f"at {self._address!r}" if self._address else "(local)"
            cause = exc.__cause__
            why = f"{exc}" + (
                f" ({type(cause).__name__}: {str(cause).splitlines()[-1][:300]})" if cause else ""
            )
            raise ConfigError(
                f"Could not connect to the Ray cluster {where}: {why}. Start one with `ray start --head`, "
                "set RAY_ADDRESS to its address, or use executor='process'."
            ) from None

    def prepare(self, user_modules: set[str]) -> None:
        self._modules = user_modules
        _by_value(user_modules)
        self._remote = self._ray.remote(run_payload_ray)

    def submit(self, task: StepTask, inputs: dict[str, Any], resources: dict[str, float]) -> Future[Any]:
        import cloudpickle

        opts: dict[str, Any] = {"num_returns": 2, "max_retries": 0}
        custom = {}
        for k, v in resources.items():
            if k in ("num_cpus", "num_gpus", "memory"):
                opts[k] = v
            else:
                custom[k] = v
        opts.setdefault("num_cpus", 1)
        if custom:
            opts["resources"] = custom
        nodes = [n for n, h in inputs.items() if h is not None]
        refs = [inputs[n] for n in nodes]
        res_ref, value_ref = self._remote.options(**opts).remote(cloudpickle.dumps(task), nodes, *refs)
        out: Future[Any] = Future()
        inner = res_ref.future()

        def done(f: Future[Any]) -> None:
            try:
                res = f.result()
                out.set_result((res, value_ref if res.ok else None))
            except BaseException as exc:
                out.set_result((_crashed(task, exc), None))

        inner.add_done_callback(done)
        return out


def make_executor(name: str | None, workers: int | None = None, address: str | None = None) -> Executor:
    """Build the executor named ``name`` (None: :func:`default_executor`)."""
    name = name or default_executor()
    if name not in EXECUTORS:
        raise InvalidArgumentError(
            f"The 'executor' parameter of run must be one of {sorted(EXECUTORS)}. Got {name!r} instead."
            + did_you_mean(str(name), EXECUTORS)
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidArgumentError(
            f"The 'workers' parameter of run must be an int in the range [1, inf). Got {workers!r} instead."
        )
    if name == "local":
        return LocalExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    return RayExecutor(workers, address)
