"""The peers, side by side: `python -m benchmarks.peers` (see ../README.md).

Installs Apache Airflow and Prefect into their own virtualenvs under `benchmarks/.peers/`, and
runs the same small shapes with asyncflow, `airflow dags test` and a Prefect 3 flow in the same
run. Each system runs a script of its own (`run_asyncflow.py`, `airflow_dag.py`,
`run_prefect.py`) as a whole process; every task writes when it started and ended, so the table
can tell the process's start-up apart from the run itself.
"""
