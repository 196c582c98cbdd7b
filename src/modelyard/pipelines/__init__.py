"""Pipelines: plain Python steps in a DAG, cached by content, run locally, in processes or on Ray.

import modelyard as yard

@yard.step
def load(path: str) -> pd.DataFrame: ...

@yard.step(retries=2, resources={"num_cpus": 1})
def featurize(df: pd.DataFrame, window: int = 7) -> pd.DataFrame: ...

@yard.pipeline(experiment="churn")
def churn(path: str = "data/train.parquet"):
    return featurize(load(path))

churn.run()                  # tracked, cached; unchanged steps are skipped
churn.status(window=14)      # which steps would run, and why
"""

from modelyard.pipelines._airflow import AirflowExport, export_airflow
from modelyard.pipelines._cache import cache_key, key_document
from modelyard.pipelines._codehash import code_fingerprint
from modelyard.pipelines._executors import EXECUTORS, default_executor
from modelyard.pipelines._graph import DatasetInput, Graph, Node, Ref, build_graph, dataset
from modelyard.pipelines._loader import load_pipeline
from modelyard.pipelines._records import PipelineResult, StepOutcome, StepState
from modelyard.pipelines._runner import (
    clear_cache,
    load_step_output,
    pipeline_status,
    run_pipeline,
    show_pipeline_run,
)
from modelyard.pipelines._serializers import SERIALIZERS, load_output
from modelyard.pipelines._spec import PipelineSpec, StepSpec, pipeline, step

__all__ = [
    "EXECUTORS",
    "SERIALIZERS",
    "AirflowExport",
    "DatasetInput",
    "Graph",
    "Node",
    "PipelineResult",
    "PipelineSpec",
    "Ref",
    "StepOutcome",
    "StepSpec",
    "StepState",
    "build_graph",
    "cache_key",
    "clear_cache",
    "code_fingerprint",
    "dataset",
    "default_executor",
    "export_airflow",
    "key_document",
    "load_output",
    "load_pipeline",
    "load_step_output",
    "pipeline",
    "pipeline_status",
    "run_pipeline",
    "show_pipeline_run",
    "step",
]
