"""A daily report: a cron schedule, a templated Bash step, and values handed between Python
tasks through XCom with TaskFlow.

Runs every day at 06:00 UTC for the day before: the run with logical date D covers
[D 06:00, D+1 06:00) and starts just after D+1 06:00. `export_orders` is a Bash command
templated with `{{ ds }}`; its last line of output is its XCom. `extract` reads it, `transform`
computes figures from it, `publish` writes the report - each receives the previous one's return
value. No run configuration is ever put into the shell command (templated values in
`bash_command` are shell-quoted anyway).

`catchup=False`: the first start runs only the latest complete day. With `catchup=True` the
daemon would create one run per day since `start_date` (oldest first, `max_active_runs` at a
time); to run a past range on demand, stop the daemon and use
`asyncflow dags backfill daily_report --start-date 2024-01-01 --end-date 2024-01-07`.
"""

from datetime import datetime, timedelta

from asyncflow import DAG, task
from asyncflow.operators import BashOperator

with DAG(
    dag_id="daily_report",
    start_date=datetime(2024, 1, 1),
    schedule="0 6 * * *",
    catchup=False,
    max_active_runs=2,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["example", "report"],
) as dag:
    export_orders = BashOperator(
        task_id="export_orders",
        bash_command="echo 'exporting orders of {{ ds }}'; echo 17,23,5,42",
    )

    @task
    def extract(csv_line: str) -> list[int]:
        return [int(value) for value in csv_line.split(",")]

    @task
    def transform(amounts: list[int]) -> dict[str, float]:
        return {
            "orders": len(amounts),
            "revenue": sum(amounts),
            "mean": sum(amounts) / len(amounts),
        }

    @task
    def publish(figures: dict[str, float], ds=None) -> str:
        line = f"report for {ds}: {figures['orders']} orders, revenue {figures['revenue']}"
        print(line)
        return line

    publish(transform(extract(export_orders.output)))
