"""The job tables, versioned. Each backend applies the versions it has not seen, under a lock."""

from __future__ import annotations

SCHEMA_VERSION = 5

_LIVE = "'Scheduled', 'Enqueued', 'Processing', 'Awaiting'"


def _tables(id_type: str, time_type: str, without_rowid: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS diquis_jobs (
            id {id_type},
            target TEXT NOT NULL,
            args TEXT NOT NULL,
            kwargs TEXT NOT NULL,
            queue TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            attempt INTEGER NOT NULL DEFAULT 0,
            retry_count INTEGER NOT NULL DEFAULT 0,
            created_at {time_type} NOT NULL,
            scheduled_at {time_type},
            enqueued_at {time_type},
            started_at {time_type},
            finished_at {time_type},
            expire_at {time_type},
            server_id TEXT,
            unique_key TEXT,
            parent_id BIGINT,
            continuation_on TEXT,
            recurring_id TEXT,
            result TEXT,
            error TEXT)""",
        # the fetch path: only Enqueued rows, per queue, oldest first
        "CREATE INDEX IF NOT EXISTS diquis_jobs_fetch ON diquis_jobs (queue, id)"
        " WHERE state = 'Enqueued'",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_scheduled ON diquis_jobs (scheduled_at)"
        " WHERE state = 'Scheduled'",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_processing ON diquis_jobs (server_id)"
        " WHERE state = 'Processing'",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_awaiting ON diquis_jobs (parent_id)"
        " WHERE state = 'Awaiting'",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_failed ON diquis_jobs (id) WHERE state = 'Failed'",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_expire ON diquis_jobs (expire_at)"
        " WHERE expire_at IS NOT NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS diquis_jobs_unique ON diquis_jobs (unique_key)"
        f" WHERE unique_key IS NOT NULL AND state IN ({_LIVE})",
        f"""CREATE TABLE IF NOT EXISTS diquis_job_history (
            id {id_type},
            job_id BIGINT NOT NULL,
            state TEXT NOT NULL,
            at {time_type} NOT NULL,
            reason TEXT,
            server_id TEXT,
            data TEXT)""",
        "CREATE INDEX IF NOT EXISTS diquis_job_history_job ON diquis_job_history (job_id)",
        f"""CREATE TABLE IF NOT EXISTS diquis_job_tags (
            tag TEXT NOT NULL,
            job_id BIGINT NOT NULL,
            PRIMARY KEY (tag, job_id)){without_rowid}""",
        "CREATE INDEX IF NOT EXISTS diquis_job_tags_job ON diquis_job_tags (job_id)",
        f"""CREATE TABLE IF NOT EXISTS diquis_servers (
            id TEXT PRIMARY KEY,
            hostname TEXT NOT NULL,
            pid INTEGER NOT NULL,
            queues TEXT NOT NULL,
            concurrency INTEGER NOT NULL,
            started_at {time_type} NOT NULL,
            heartbeat_at {time_type} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS diquis_recurring (
            id TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            args TEXT NOT NULL,
            kwargs TEXT NOT NULL,
            cron TEXT NOT NULL,
            tz TEXT NOT NULL,
            queue TEXT NOT NULL,
            misfire TEXT NOT NULL,
            next_run_at {time_type},
            last_run_at {time_type},
            last_job_id BIGINT,
            error TEXT,
            created_at {time_type} NOT NULL,
            updated_at {time_type} NOT NULL)""",
    ]


# Succeeded/failed counts per hour and server: the dashboard's history graph, kept after
# jobs expire. One row per server so concurrent servers never wait on each other's counter.
_STATS = [
    """CREATE TABLE IF NOT EXISTS diquis_stats (
        bucket BIGINT NOT NULL,
        state TEXT NOT NULL,
        server_id TEXT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (bucket, state, server_id))""",
    "CREATE INDEX IF NOT EXISTS diquis_jobs_parent ON diquis_jobs (parent_id)"
    " WHERE parent_id IS NOT NULL",
]


def _concurrency(time_type: str) -> list[str]:
    """Version 3: mutexes, limits, rate limits, partitions (existing rows: none of them)."""
    return [
        *(
            f"ALTER TABLE diquis_jobs ADD COLUMN {column}"
            for column in (
                "mutex_key TEXT",
                "limit_n INTEGER",
                "rate_key TEXT",
                "rate_n INTEGER",
                f"rate_period {time_type}",
                "partition_key TEXT",
                # 1 when any of the above is set: such jobs take the claim's careful path
                "gated INTEGER NOT NULL DEFAULT 0",
            )
        ),
        "CREATE INDEX IF NOT EXISTS diquis_jobs_gated ON diquis_jobs (queue, partition_key, id)"
        " WHERE state = 'Enqueued' AND gated = 1",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_rate ON diquis_jobs (rate_key, started_at)"
        " WHERE rate_key IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS diquis_queue_limits (
            queue TEXT PRIMARY KEY,
            n INTEGER NOT NULL)""",
    ]


def _batches(id_type: str, time_type: str) -> list[str]:
    """Version 4: batches (jobs created together and followed as one)."""
    return [
        f"""CREATE TABLE IF NOT EXISTS diquis_batches (
            id {id_type},
            created_at {time_type} NOT NULL,
            finished_at {time_type},
            cancelled_at {time_type},
            parent_batch_id BIGINT,
            continuation_on TEXT)""",
        "ALTER TABLE diquis_jobs ADD COLUMN batch_id BIGINT",
        "ALTER TABLE diquis_jobs ADD COLUMN parent_batch_id BIGINT",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_batch ON diquis_jobs (batch_id, state)"
        " WHERE batch_id IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS diquis_jobs_batch_awaiting ON diquis_jobs (parent_batch_id)"
        " WHERE parent_batch_id IS NOT NULL",
    ]


def _progress(time_type: str) -> list[str]:
    """Version 5: what a running job reports (progress, message, its last log lines)."""
    return [
        f"ALTER TABLE diquis_jobs ADD COLUMN {column}"
        for column in ("progress REAL", "progress_message TEXT", "log TEXT")
    ]


SQLITE_SCHEMA: list[tuple[int, list[str]]] = [
    (1, _tables("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL", " WITHOUT ROWID")),
    (2, _STATS),
    (3, _concurrency("REAL")),
    (4, _batches("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL")),
    (5, _progress("REAL")),
]

# PostgreSQL: a statement-level trigger publishes every state change (the cross-process
# feed) and wakes idle servers of the job's queue, whatever wrote the row — the engine,
# or a caller's transaction enqueueing next to its own rows. NOTIFY is sent at commit.
_PG_NOTIFY = """
CREATE OR REPLACE FUNCTION diquis_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload text;
    q text;
BEGIN
    FOR payload IN
        SELECT string_agg(id || ':' || state, ',')
        FROM (SELECT id, state, (row_number() OVER ()) / 400 AS chunk FROM changed) c
        GROUP BY chunk
    LOOP
        PERFORM pg_notify('diquis_state', payload);
    END LOOP;
    FOR q IN SELECT DISTINCT queue FROM changed WHERE state = 'Enqueued' LOOP
        PERFORM pg_notify('diquis_enqueued', q);
    END LOOP;
    RETURN NULL;
END $$"""

# Version 6: a statement that sends its own notifications says so with a transaction-local
# flag, and the trigger skips it: the engine's commonest enqueue
# (:data:`..postgres._INSERT_LEAN`), for which the trigger's function cost more than the
# notifications themselves. The trigger takes the flag back at the end of that statement,
# so the transaction's next statement is notified as usual.
_PG_NOTIFY_SKIPPABLE = _PG_NOTIFY.replace(
    """BEGIN
    FOR payload IN""",
    """BEGIN
    IF current_setting('diquis.notified', true) = 'on' THEN
        PERFORM set_config('diquis.notified', 'off', true);
        RETURN NULL;
    END IF;
    FOR payload IN""",
    1,
)

PG_SCHEMA: list[tuple[int, list[str]]] = [
    (
        1,
        [
            *_tables("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "DOUBLE PRECISION", ""),
            _PG_NOTIFY,
            "CREATE TRIGGER diquis_jobs_notify_insert AFTER INSERT ON diquis_jobs"
            " REFERENCING NEW TABLE AS changed FOR EACH STATEMENT"
            " EXECUTE FUNCTION diquis_jobs_notify()",
            "CREATE TRIGGER diquis_jobs_notify_update AFTER UPDATE ON diquis_jobs"
            " REFERENCING NEW TABLE AS changed FOR EACH STATEMENT"
            " EXECUTE FUNCTION diquis_jobs_notify()",
        ],
    ),
    (2, _STATS),
    (3, _concurrency("DOUBLE PRECISION")),
    (
        4,
        _batches("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "DOUBLE PRECISION"),
    ),
    (5, _progress("DOUBLE PRECISION")),
    (6, [_PG_NOTIFY_SKIPPABLE]),
]
