"""Declarative studies: a validated study file expands into independent tasks that run locally or on Dask.

Typical use::

    from neurodtco.study import load_study, run_study
    from neurodtco.store import load_results

    summary = run_study(load_study("demo"), "results/demo", workers=2)
    table = load_results("results/demo")
"""

from .compute import Setup, TaskOutput, execute_task, prepare_setup
from .executors import DaskExecutor, LocalExecutor, SerialExecutor, executor_factory, make_executor
from .runner import RunProgress, RunSummary, StudyRunError, run_study
from .schema import Study, StudyFileError, builtin_study_path, load_study, parse_study
from .tasks import CircuitPoint, Task, circuit_points, expand_tasks

__all__ = [
    "Setup", "TaskOutput", "execute_task", "prepare_setup", "DaskExecutor", "LocalExecutor", "SerialExecutor",
    "executor_factory", "make_executor", "RunProgress", "RunSummary", "StudyRunError", "run_study", "Study", "StudyFileError",
    "builtin_study_path", "load_study", "parse_study", "CircuitPoint", "Task", "circuit_points", "expand_tasks",
]
