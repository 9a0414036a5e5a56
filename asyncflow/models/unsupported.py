"""What asyncflow does not have of Airflow, and what to use instead.

The errors built here replace raw ones (`'_TaskNamespace' object has no attribute 'docker'`,
`No module named 'airflow.providers.cncf'`) with a sentence that names the Airflow feature, says
that asyncflow does not support it, and says what to write instead.
"""

from __future__ import annotations

from asyncflow.exceptions import UnsupportedAttributeError, UnsupportedImportError

_ON_THIS_HOST = "asyncflow runs every task on its own host: use @task or BashOperator instead"
_IN_A_TASK = "call the service's Python client from a @task (async def for network IO)"
_NO_MAPPING = (
    "asyncflow maps single tasks (.partial().expand(), .expand_kwargs()) but not whole task "
    "groups yet: map each task of the group, or loop over the values inside one @task"
)

#: `@task.<name>` decorators asyncflow does not have
TASK_DECORATORS: dict[str, tuple[str, str]] = {
    "kubernetes": ("@task.kubernetes (a function run in a Kubernetes pod)", _ON_THIS_HOST),
    "kubernetes_cmd": ("@task.kubernetes_cmd (a command run in a Kubernetes pod)", _ON_THIS_HOST),
    "docker": ("@task.docker (a function run in a Docker container)", _ON_THIS_HOST),
    "pyspark": ("@task.pyspark", _IN_A_TASK),
    "snowpark": ("@task.snowpark", _IN_A_TASK),
    "sql": ("@task.sql (the common.sql provider)", _IN_A_TASK),
    "stub": ("@task.stub (a task run by another language's SDK)", "write the task in Python"),
    "llm": ("@task.llm (the common.ai provider)", _IN_A_TASK),
}

#: Airflow modules (and every module below them) asyncflow does not provide
MODULES: dict[str, tuple[str, str]] = {
    "airflow.providers.cncf": ("the Kubernetes provider (airflow.providers.cncf)", _ON_THIS_HOST),
    "airflow.providers.docker": ("the Docker provider", _ON_THIS_HOST),
    "airflow.providers.celery": ("the Celery executor", "drop it: asyncflow has one executor"),
    "airflow.executors": ("Airflow executors", "drop it: asyncflow has one executor"),
    "airflow.providers.amazon": ("the Amazon provider", _IN_A_TASK + " (boto3/aiobotocore)"),
    "airflow.providers.google": ("the Google provider", _IN_A_TASK),
    "airflow.providers.microsoft": ("the Microsoft provider", _IN_A_TASK),
    "airflow.providers.http": ("the HTTP provider", _IN_A_TASK + " (httpx, aiohttp)"),
    "airflow.providers.common": ("the common.* providers (SQL, IO, AI)", _IN_A_TASK),
    "airflow.providers.postgres": ("the Postgres provider", _IN_A_TASK + " (asyncpg)"),
    "airflow.providers.mysql": ("the MySQL provider", _IN_A_TASK),
    "airflow.providers.sqlite": ("the SQLite provider", _IN_A_TASK + " (sqlite3)"),
    "airflow.providers.slack": ("the Slack provider", _IN_A_TASK),
    "airflow.providers.smtp": (
        "the SMTP provider (e-mail)",
        "send mail with on_failure_callback=[asyncflow.notifications.EmailNotifier(to=...)]",
    ),
    "airflow.providers.openlineage": ("OpenLineage", "drop it"),
    "airflow.providers.standard.operators.hitl": (
        "human-in-the-loop operators",
        "asyncflow has no approval UI: pause the DAG or use a sensor on a file or flag",
    ),
    "airflow.io": ("ObjectStoragePath (object storage)", _IN_A_TASK + " (fsspec)"),
    "airflow.hooks": ("Airflow hooks", _IN_A_TASK),
}

#: single names (imported from any Airflow module) asyncflow does not provide
NAMES: dict[str, tuple[str, str]] = {
    "ObjectStoragePath": MODULES["airflow.io"],
    "EmailOperator": MODULES["airflow.providers.smtp"],
    "XCom": ("the XCom model", "pull values with context['ti'].xcom_pull(...)"),
    "TaskInstance": ("the TaskInstance model", "use context['ti'] inside a task"),
    "DagRun": ("the DagRun model", "use context['dag_run'] inside a task"),
    "DagBag": ("Airflow's DagBag", "load DAGs with asyncflow's DAG folder (`asyncflow dags list`)"),
}


def task_decorator(name: str) -> UnsupportedAttributeError:
    """The error for `@task.<name>` when asyncflow does not have that decorator."""
    feature, advice = TASK_DECORATORS.get(
        name,
        (f"@task.{name}", "asyncflow has @task, @task.python, @task.branch, "
         "@task.short_circuit, @task.bash, @task.sensor, @task.virtualenv, "
         "@task.external_python, @task.run_if and @task.skip_if"),
    )  # fmt: skip
    return UnsupportedAttributeError(feature, advice)


def mapping(what: str) -> UnsupportedAttributeError:
    """The error for `.expand()` / `.partial()` / `.map()` on `what`."""
    return UnsupportedAttributeError(f"dynamic task mapping ({what})", _NO_MAPPING)


def module(name: str) -> UnsupportedImportError:
    """The error for importing an Airflow module asyncflow does not provide."""
    for prefix, (feature, advice) in MODULES.items():
        if name == prefix or name.startswith(prefix + "."):
            error = UnsupportedImportError(f"{feature} (module {name!r})", advice)
            break
    else:
        error = UnsupportedImportError(
            f"the Airflow module {name!r}",
            "asyncflow maps airflow, airflow.sdk, airflow.decorators, airflow.models, "
            "airflow.operators.*, airflow.sensors.*, airflow.utils.*, "
            "airflow.providers.standard.* and airflow.exceptions onto its own objects; "
            "write what this module did as a @task or a BaseOperator subclass",
        )
    error.name = name
    return error


def name_in(module_name: str, name: str, available: list[str]) -> UnsupportedImportError:
    """The error for `from <module_name> import <name>` when asyncflow lacks `name`."""
    if name in NAMES:
        feature, advice = NAMES[name]
        error = UnsupportedImportError(f"{feature} ({module_name}.{name})", advice)
    else:
        error = UnsupportedImportError(
            f"{module_name}.{name}",
            f"asyncflow's {module_name} has {', '.join(sorted(available)) or 'nothing else'}; "
            "write the rest as a @task or a BaseOperator subclass",
        )
    error.name = module_name
    return error
