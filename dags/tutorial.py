"""The tutorial's first DAG: three tasks in a row, `tugas_1 >> tugas_2 >> tugas_3`.

`tugas_1` fetches (a Bash command), `tugas_2` cleans (a Python function), `tugas_3` marks the
end (an EmptyOperator). The DAG runs daily from 2018-11-01, as in the tutorial: the run with
logical date 2018-11-01 covers [11-01, 11-02) and starts just after 2018-11-02 00:00.
"""

from datetime import datetime, timedelta

from asyncflow import DAG
from asyncflow.operators import BashOperator, EmptyOperator, PythonOperator


def clean(ti=None, ds=None):
    fetched = ti.xcom_pull(task_ids="tugas_1") or ""  # tugas_1's last line of output
    print(f"cleaning {fetched!r} for {ds}")
    return fetched.strip().upper()


with DAG(
    dag_id="tutorial",
    start_date=datetime(2018, 11, 1),
    schedule="@daily",
    # The tutorial runs with catchup (Airflow 2's default). Here catchup=False: with it, the
    # first start would create one run per day since 2018-11-01, about 2,900 of them. Without
    # it only the latest complete interval (yesterday) runs, then one run a day.
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["tutorial"],
) as dag:
    tugas_1 = BashOperator(task_id="tugas_1", bash_command="echo 'data for {{ ds }}'")
    tugas_2 = PythonOperator(task_id="tugas_2", python_callable=clean)
    tugas_3 = EmptyOperator(task_id="tugas_3")

    tugas_1 >> tugas_2 >> tugas_3
