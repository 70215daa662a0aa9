"""The SQL both backends share, as named statements.

Written once in the common subset of SQLite and PostgreSQL with ``?`` placeholders (a
connector converts them). State names come from :mod:`..states`; the state rules in
``WHERE`` clauses are the moves' sources (:meth:`Move.sql_sources`), never literals.
"""

from __future__ import annotations

from typing import Any

from ..model import Outcome
from ..states import (
    CLAIM,
    DUE,
    HAND_BACK,
    LIVE_STATES,
    PARENT_DONE,
    START_CONTINUATION,
    SUCCEED,
    State,
    sql_list,
)

JOB_COLUMNS = (
    "id, target, args, kwargs, queue, state, reason, attempt, retry_count, created_at, "
    "scheduled_at, enqueued_at, started_at, finished_at, expire_at, server_id, unique_key, "
    "parent_id, continuation_on, recurring_id, result, error, progress, progress_message, log,"
    " batch_id"
)
CLAIM_COLUMNS = "id, target, args, kwargs, queue, attempt, retry_count, enqueued_at"
RECURRING_COLUMNS = (
    "id, target, args, kwargs, cron, tz, queue, misfire, next_run_at, last_run_at, "
    "last_job_id, error, created_at"
)
HISTORY_COLUMNS = "state, at, reason, server_id, data"

#: the states that hold a unique key
LIVE_SQL = sql_list(LIVE_STATES)
#: the one state a run is in while a server owns it (what every finish expects)
#: the state a server's runs are in
PROCESSING = CLAIM.target.value
#: the state a server claims from
ENQUEUED = State.ENQUEUED.value
assert CLAIM.sources == {State.ENQUEUED}

# -- creating jobs ---------------------------------------------------------------------

_JOB_INSERT_COLUMNS = (
    "target, args, kwargs, queue, state, reason, created_at, scheduled_at, enqueued_at,"
    " finished_at, unique_key, parent_id, continuation_on, recurring_id, mutex_key, limit_n,"
    " rate_key, rate_n, rate_period, partition_key, gated, batch_id, parent_batch_id"
)
#: a new job's row (for executemany: without RETURNING)
INSERT_JOB_ROW = (
    f"INSERT INTO diquis_jobs ({_JOB_INSERT_COLUMNS}) VALUES"
    f" ({', '.join('?' * (_JOB_INSERT_COLUMNS.count(',') + 1))})"
)
INSERT_JOB = INSERT_JOB_ROW + " RETURNING id"
INSERT_HISTORY = "INSERT INTO diquis_job_history (job_id, state, at, reason) VALUES (?, ?, ?, ?)"
INSERT_HISTORY_FULL = (
    "INSERT INTO diquis_job_history (job_id, state, at, reason, server_id, data)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_TAG = "INSERT INTO diquis_job_tags (tag, job_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
LIVE_WITH_KEY = f"SELECT id FROM diquis_jobs WHERE unique_key = ? AND state IN ({LIVE_SQL})"
STATE_OF = "SELECT state FROM diquis_jobs WHERE id = ?"

# -- reading ---------------------------------------------------------------------------

JOB_BY_ID = f"SELECT {JOB_COLUMNS} FROM diquis_jobs WHERE id = ?"
TAGS_OF = "SELECT tag FROM diquis_job_tags WHERE job_id = ? ORDER BY tag"
HISTORY_OF = f"SELECT {HISTORY_COLUMNS} FROM diquis_job_history WHERE job_id = ? ORDER BY id"
COUNT_BY_STATE = "SELECT state, count(*) FROM diquis_jobs GROUP BY state"
CHILDREN = f"SELECT {JOB_COLUMNS} FROM diquis_jobs WHERE parent_id = ? ORDER BY id"
RUNNING_ON = (
    f"SELECT {JOB_COLUMNS} FROM diquis_jobs WHERE state = '{PROCESSING}'"
    " AND server_id = ? ORDER BY id"
)
THROUGHPUT = (
    "SELECT bucket, state, sum(count) FROM diquis_stats WHERE bucket >= ?"
    " GROUP BY bucket, state ORDER BY bucket"
)
SERVERS = (
    "SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at"
    " FROM diquis_servers ORDER BY started_at"
)

# -- continuations ---------------------------------------------------------------------

SETTLED_CONTINUATIONS = (
    "SELECT c.id, p.id, p.state, c.continuation_on FROM diquis_jobs c"
    " JOIN diquis_jobs p ON c.parent_id = p.id"
    f" WHERE {START_CONTINUATION.sql_match('c.state')}"
    f" AND p.state IN ({sql_list(PARENT_DONE)})"
)

# -- servers ---------------------------------------------------------------------------

REGISTER_SERVER = (
    "INSERT INTO diquis_servers (id, hostname, pid, queues, concurrency, started_at,"
    " heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " heartbeat_at = excluded.heartbeat_at"
)
HEARTBEAT = "UPDATE diquis_servers SET heartbeat_at = ? WHERE id = ?"
REMOVE_SERVER = "DELETE FROM diquis_servers WHERE id = ?"
DEAD_SERVERS = "DELETE FROM diquis_servers WHERE heartbeat_at < ? RETURNING id"


def owned_runs(n: int) -> str:
    """Which of ``n`` job ids are still this server's runs (id, attempt)."""
    return (
        f"SELECT id, attempt FROM diquis_jobs WHERE id IN ({', '.join('?' * n)})"
        f" AND {HAND_BACK.sql_match()} AND server_id = ?"
    )


ORPHANS = (
    f"SELECT id, server_id FROM diquis_jobs WHERE {HAND_BACK.sql_match()} AND"
    " (server_id IS NULL OR server_id NOT IN (SELECT id FROM diquis_servers))"
)

# -- the worker protocol ---------------------------------------------------------------

FINISH = (
    "UPDATE diquis_jobs SET state = ?, reason = ?, finished_at = ?, expire_at = ?,"
    " result = ?, error = ?, scheduled_at = ?, retry_count = ?"
    f" WHERE id = ? AND {SUCCEED.sql_match()} AND server_id = ? AND attempt = ?"
)


def finish_row(o: Outcome, server_id: str, now: float) -> tuple[Any, ...]:
    """The parameters of :data:`FINISH` for one outcome."""
    finished = None if o.state is State.SCHEDULED else now
    return (o.state.value, o.reason, finished, o.expire_at, o.result, o.error,
            o.scheduled_at, o.retry_count, o.job_id, server_id, o.attempt)  # fmt: skip


COUNT_OUTCOMES = (
    "INSERT INTO diquis_stats (bucket, state, server_id, count) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (bucket, state, server_id) DO UPDATE SET"
    " count = diquis_stats.count + excluded.count"
)
DUE_JOBS = (
    f"SELECT id FROM diquis_jobs WHERE {DUE.sql_match()} AND scheduled_at <= ?"
    " ORDER BY scheduled_at LIMIT ?"
)
NEXT_DUE = f"SELECT min(scheduled_at) FROM diquis_jobs WHERE {DUE.sql_match()}"
EXPIRED = "SELECT id FROM diquis_jobs WHERE expire_at < ? LIMIT ?"
EXPIRE_STATS = "DELETE FROM diquis_stats WHERE bucket < ?"

# -- claiming under mutexes, limits and partitions -----------------------------------

CANDIDATE_COLUMNS = "id, target, mutex_key, limit_n, rate_key, rate_n, rate_period, partition_key"
HAS_GATED = (
    f"SELECT 1 FROM diquis_jobs WHERE {CLAIM.sql_match()} AND gated = 1 AND queue = ? LIMIT 1"
)
GATED_PARTITIONS = (
    f"SELECT DISTINCT partition_key FROM diquis_jobs WHERE {CLAIM.sql_match()} AND gated = 1"
    " AND queue = ?"
)
_CANDIDATES = f"SELECT {CANDIDATE_COLUMNS} FROM diquis_jobs WHERE {CLAIM.sql_match()} AND queue = ?"
CANDIDATES_IN_PARTITION = _CANDIDATES + " AND gated = 1 AND partition_key = ? ORDER BY id LIMIT ?"
CANDIDATES_NO_PARTITION = (
    _CANDIDATES + " AND gated = 1 AND partition_key IS NULL ORDER BY id LIMIT ?"
)
CANDIDATES_UNGATED = _CANDIDATES + " AND gated = 0 ORDER BY id LIMIT ?"
RUNNING = f"SELECT queue, target, mutex_key FROM diquis_jobs WHERE state = '{PROCESSING}'"
STARTED_SINCE = "SELECT count(*) FROM diquis_jobs WHERE rate_key = ? AND started_at >= ?"
QUEUE_LIMITS = "SELECT queue, n FROM diquis_queue_limits"
SET_QUEUE_LIMIT = (
    "INSERT INTO diquis_queue_limits (queue, n) VALUES (?, ?)"
    " ON CONFLICT (queue) DO UPDATE SET n = excluded.n"
)
REMOVE_QUEUE_LIMIT = "DELETE FROM diquis_queue_limits WHERE queue = ?"


def claim_ids(n: int) -> str:
    """Claim ``n`` chosen jobs by id (those still Enqueued)."""
    return (
        f"UPDATE diquis_jobs SET state = '{PROCESSING}', reason = NULL, server_id = ?,"
        " attempt = attempt + 1, started_at = CASE WHEN enqueued_at IS NULL"
        " OR enqueued_at < ? THEN ? ELSE enqueued_at END"
        f" WHERE id IN ({', '.join('?' * n)}) AND {CLAIM.sql_match()}"
        f" RETURNING {CLAIM_COLUMNS}"
    )


# -- progress --------------------------------------------------------------------------

LOG_OF = "SELECT log FROM diquis_jobs WHERE id = ? AND attempt = ?"
SAVE_PROGRESS = (
    "UPDATE diquis_jobs SET progress = ?, progress_message = ?, log = ?"
    " WHERE id = ? AND attempt = ?"
)
SAVE_LOG = "UPDATE diquis_jobs SET log = ? WHERE id = ? AND attempt = ?"

# -- batches ---------------------------------------------------------------------------

BATCH_COLUMNS = "id, created_at, finished_at, cancelled_at, parent_batch_id, continuation_on"
OPEN_BATCH = (
    "INSERT INTO diquis_batches (created_at, parent_batch_id, continuation_on)"
    " VALUES (?, ?, ?) RETURNING id"
)
BATCH_BY_ID = f"SELECT {BATCH_COLUMNS} FROM diquis_batches WHERE id = ?"
BATCHES = f"SELECT {BATCH_COLUMNS} FROM diquis_batches ORDER BY id DESC LIMIT ? OFFSET ?"
COUNT_BATCHES = "SELECT count(*) FROM diquis_batches"
BATCH_COUNTS = "SELECT state, count(*) FROM diquis_jobs WHERE batch_id = ? GROUP BY state"
BATCH_LIVE = f"SELECT 1 FROM diquis_jobs WHERE batch_id = ? AND state IN ({LIVE_SQL}) LIMIT 1"
BATCH_JOBS = (
    f"SELECT {JOB_COLUMNS} FROM diquis_jobs WHERE batch_id = ? ORDER BY id LIMIT ? OFFSET ?"
)
BATCH_CONTINUATIONS = "SELECT id FROM diquis_jobs WHERE parent_batch_id = ? ORDER BY id"
BATCH_AWAITING = (
    "SELECT id, continuation_on, batch_id FROM diquis_jobs WHERE parent_batch_id = ?"
    f" AND {START_CONTINUATION.sql_match()} ORDER BY id"
)
BATCH_FINISHED = "UPDATE diquis_batches SET finished_at = ? WHERE id = ? AND finished_at IS NULL"
BATCH_REOPENED = "UPDATE diquis_batches SET finished_at = NULL WHERE id = ?"
BATCH_CANCELLED = "UPDATE diquis_batches SET cancelled_at = ? WHERE id = ?"
BATCH_IDS_OF_JOBS = "SELECT DISTINCT batch_id FROM diquis_jobs WHERE batch_id IS NOT NULL AND id IN"
DISCARD_BATCH = (
    "DELETE FROM diquis_batches WHERE id = ?"
    " AND NOT EXISTS (SELECT 1 FROM diquis_jobs WHERE batch_id = ? OR parent_batch_id = ?)"
)
BATCH_JOB_IDS = "SELECT id FROM diquis_jobs WHERE batch_id = ? AND id > ? ORDER BY id"
MAX_JOB_ID = "SELECT coalesce(max(id), 0) FROM diquis_jobs"

# -- recurring -------------------------------------------------------------------------

SAVE_RECURRING = (
    "INSERT INTO diquis_recurring (id, target, args, kwargs, cron, tz, queue, misfire,"
    " next_run_at, error, created_at, updated_at) VALUES"
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " target = excluded.target,"
    " args = excluded.args, kwargs = excluded.kwargs, cron = excluded.cron,"
    " tz = excluded.tz, queue = excluded.queue, misfire = excluded.misfire,"
    " next_run_at = excluded.next_run_at, error = NULL,"
    " updated_at = excluded.updated_at"
)
RECURRING_BY_ID = f"SELECT {RECURRING_COLUMNS} FROM diquis_recurring WHERE id = ?"
ALL_RECURRING = f"SELECT {RECURRING_COLUMNS} FROM diquis_recurring ORDER BY id"
DUE_RECURRING = f"SELECT {RECURRING_COLUMNS} FROM diquis_recurring WHERE next_run_at <= ?"
REMOVE_RECURRING = "DELETE FROM diquis_recurring WHERE id = ?"
FIRED_RECURRING = (
    "UPDATE diquis_recurring SET next_run_at = ?, last_run_at = ?,"
    " last_job_id = ?, error = ? WHERE id = ?"
)
NEXT_RECURRING = "SELECT min(next_run_at) FROM diquis_recurring"
# the stager's look before it writes: one read answers whether anything is due (of the
# settled continuations, those that would move: after a Failed parent only on="any" does)
STAGER_DUE = (
    f"SELECT ({NEXT_DUE}), ({NEXT_RECURRING}), EXISTS ({SETTLED_CONTINUATIONS}"
    f" AND (p.state <> '{State.FAILED.value}' OR c.continuation_on = 'any'))"
)
