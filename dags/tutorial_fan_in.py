"""The tutorial's second DAG: `tugas_1 >> tugas_1_2`, and `[tugas_1_2, tugas_2] >> tugas_3`.

`tugas_2` depends on nothing, so it runs at once, beside `tugas_1`; `tugas_3` runs only when
both `tugas_1_2` and `tugas_2` have succeeded (the default trigger rule, all_success).
"""

from datetime import datetime, timedelta

from asyncflow import DAG
from asyncflow.operators import BashOperator, PythonOperator


def report(ti=None):
    values = ti.xcom_pull(task_ids=["tugas_1_2", "tugas_2"])
    print(f"both branches done: {values}")


with DAG(
    dag_id="tutorial_fan_in",
    start_date=datetime(2018, 11, 1),
    schedule="@daily",
    catchup=False,  # see tutorial.py: no 2,900-run catchup on the first start
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    tags=["tutorial"],
) as dag:
    tugas_1 = BashOperator(task_id="tugas_1", bash_command="echo fetched")
    tugas_1_2 = BashOperator(task_id="tugas_1_2", bash_command="echo 'cleaned {{ ds }}'")
    tugas_2 = PythonOperator(task_id="tugas_2", python_callable=lambda: "side data")
    tugas_3 = PythonOperator(task_id="tugas_3", python_callable=report)

    tugas_1 >> tugas_1_2
    [tugas_1_2, tugas_2] >> tugas_3
