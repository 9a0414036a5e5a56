"""The schema as numbered steps. A database at `user_version` N gets steps N+1.. applied, in one
transaction each. Never edit a released step: add a new one."""

from __future__ import annotations

STEPS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE dag (
        dag_id      TEXT PRIMARY KEY,
        is_paused   INTEGER NOT NULL DEFAULT 0,
        fileloc     TEXT,
        last_seen   TEXT
    );
    CREATE TABLE dag_run (
        id                   INTEGER PRIMARY KEY AUTOINCREMENT,
        dag_id               TEXT NOT NULL,
        run_id               TEXT NOT NULL,
        logical_date         TEXT NOT NULL,
        data_interval_start  TEXT NOT NULL,
        data_interval_end    TEXT NOT NULL,
        run_type             TEXT NOT NULL,
        state                TEXT NOT NULL,
        conf                 TEXT NOT NULL DEFAULT '{}',
        start_date           TEXT,
        end_date             TEXT,
        queued_at            TEXT,
        UNIQUE (dag_id, run_id),
        UNIQUE (dag_id, logical_date)
    );
    CREATE INDEX dag_run_state ON dag_run (state);
    CREATE TABLE task_instance (
        dag_id       TEXT NOT NULL,
        run_id       TEXT NOT NULL,
        task_id      TEXT NOT NULL,
        map_index    INTEGER NOT NULL DEFAULT -1,
        state        TEXT NOT NULL,
        try_number   INTEGER NOT NULL DEFAULT 0,
        max_tries    INTEGER NOT NULL DEFAULT 0,
        start_date   TEXT,
        end_date     TEXT,
        duration     REAL,
        error        TEXT,
        next_try_at  TEXT,
        PRIMARY KEY (dag_id, run_id, task_id, map_index)
    ) WITHOUT ROWID;
    CREATE TABLE xcom (
        dag_id     TEXT NOT NULL,
        run_id     TEXT NOT NULL,
        task_id    TEXT NOT NULL,
        map_index  INTEGER NOT NULL DEFAULT -1,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        PRIMARY KEY (dag_id, run_id, task_id, map_index, key)
    ) WITHOUT ROWID;
    CREATE TABLE import_error (
        fileloc     TEXT PRIMARY KEY,
        message     TEXT NOT NULL,
        stacktrace  TEXT NOT NULL,
        timestamp   TEXT NOT NULL
    );
    CREATE TABLE pool (
        name         TEXT PRIMARY KEY,
        slots        INTEGER NOT NULL,
        description  TEXT NOT NULL DEFAULT ''
    );
    """,
    # 2: requests from other processes (the CLI) that the running engine carries out
    """
    CREATE TABLE request (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,
        payload     TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        done_at     TEXT,
        result      TEXT
    );
    CREATE INDEX request_pending ON request (done_at);
    """,
    # 3: attempts lost by the engine (crash, kill -9) are counted, not charged as tries
    """
    ALTER TABLE task_instance ADD COLUMN lost_count INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: Variables and Connections (Airflow's), managed with `asyncflow variables/connections`
    """
    CREATE TABLE variable (
        key          TEXT PRIMARY KEY,
        value        TEXT NOT NULL,
        description  TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE connection (
        conn_id      TEXT PRIMARY KEY,
        conn_type    TEXT NOT NULL DEFAULT '',
        description  TEXT NOT NULL DEFAULT '',
        host         TEXT,
        schema       TEXT,
        login        TEXT,
        password     TEXT,
        port         INTEGER,
        extra        TEXT
    );
    """,
    # 5: deferred task instances: the trigger they wait on and how they resume (Airflow keeps
    # these on the task instance and a trigger table; one row per deferred try here)
    """
    CREATE TABLE deferral (
        dag_id       TEXT NOT NULL,
        run_id       TEXT NOT NULL,
        task_id      TEXT NOT NULL,
        map_index    INTEGER NOT NULL DEFAULT -1,
        classpath    TEXT NOT NULL,
        kwargs       TEXT NOT NULL,
        next_method  TEXT NOT NULL,
        next_kwargs  TEXT NOT NULL,
        timeout_at   TEXT,
        fired        INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (dag_id, run_id, task_id, map_index)
    ) WITHOUT ROWID;
    """,
    # 6: assets: those the DAGs name, their events, the events each asset-scheduled DAG has
    # not yet run on (Airflow's AssetDagRunQueue), and the events each run consumed
    """
    CREATE TABLE asset (
        name        TEXT NOT NULL,
        uri         TEXT NOT NULL,
        "group"     TEXT NOT NULL DEFAULT 'asset',
        extra       TEXT NOT NULL DEFAULT '{}',
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (name, uri)
    );
    CREATE TABLE asset_event (
        id                     INTEGER PRIMARY KEY,
        name                   TEXT NOT NULL,
        uri                    TEXT NOT NULL,
        extra                  TEXT NOT NULL DEFAULT '{}',
        timestamp              TEXT NOT NULL,
        source_dag_id          TEXT,
        source_run_id          TEXT,
        source_task_id         TEXT,
        source_map_index       INTEGER NOT NULL DEFAULT -1,
        source_aliases         TEXT NOT NULL DEFAULT '[]',
        source_interval_start  TEXT,
        source_interval_end    TEXT
    );
    CREATE INDEX asset_event_asset ON asset_event (uri, name);
    CREATE TABLE asset_queue (
        dag_id    TEXT NOT NULL,
        event_id  INTEGER NOT NULL,
        PRIMARY KEY (dag_id, event_id)
    ) WITHOUT ROWID;
    CREATE TABLE asset_run_event (
        dag_id    TEXT NOT NULL,
        run_id    TEXT NOT NULL,
        event_id  INTEGER NOT NULL,
        PRIMARY KEY (dag_id, run_id, event_id)
    ) WITHOUT ROWID;
    """,
    # 7: Airflow's task state store (keys of one task instance, kept across its tries, each
    # with an optional expiry) and asset state store (keys of one asset, by its name)
    """
    CREATE TABLE task_state (
        dag_id      TEXT NOT NULL,
        run_id      TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        map_index   INTEGER NOT NULL DEFAULT -1,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        expires_at  TEXT,
        PRIMARY KEY (dag_id, run_id, task_id, map_index, key)
    ) WITHOUT ROWID;
    CREATE TABLE asset_state (
        asset       TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (asset, key)
    ) WITHOUT ROWID;
    """,
]

LATEST = len(STEPS)
