-- Schema version 4: the service. Scheduled jobs and their last fires, the crawler lock
-- (one process fetches at a time), ad-hoc crawl requests handed to the service, and
-- the holder of each crawl run (so a run left behind by a killed process is closed).

ALTER TABLE crawl_runs ADD COLUMN holder TEXT;       -- <pid>@<host> of the process running it
CREATE INDEX crawl_runs_running ON crawl_runs (result) WHERE result = 'running';
-- A run's requests by outcome (a followed ad-hoc crawl's summary) without a scan.
CREATE INDEX fetch_log_by_run ON fetch_log (crawl_run_id);
-- Articles by status (metrics) from the index, not from rows with their bodies.
CREATE INDEX articles_by_status ON articles (status);
-- Pruning finished work by age.
CREATE INDEX work_queue_finished ON work_queue (updated_at) WHERE state IN ('done', 'failed');

CREATE TABLE service_jobs (
    name             TEXT PRIMARY KEY,               -- [[schedule]] name
    kind             TEXT NOT NULL CHECK (kind IN ('discover', 'metrics', 'index', 'maintenance')),
    last_fire_at     INTEGER,                        -- the scheduled time last handled (run or skipped)
    last_started_at  INTEGER,
    last_finished_at INTEGER,
    last_result      TEXT CHECK (last_result IN ('running', 'ok', 'partial', 'failed', 'interrupted', 'skipped')),
    last_message     TEXT,
    last_run_id      INTEGER REFERENCES crawl_runs (id) ON DELETE SET NULL,
    last_success_at  INTEGER,                        -- when a run last ended ok or partial
    next_fire_at     INTEGER                         -- as computed by the running service
);

CREATE TABLE crawler_lock (
    id           INTEGER PRIMARY KEY CHECK (id = 1), -- one row at most
    holder       TEXT NOT NULL,                      -- <pid>@<host>
    role         TEXT NOT NULL CHECK (role IN ('service', 'crawl')),
    acquired_at  INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    status       TEXT                                -- what it is doing now
);

CREATE TABLE crawl_requests (
    id           INTEGER PRIMARY KEY,
    requested_at INTEGER NOT NULL,
    requested_by TEXT,                               -- <user>@<host>, <pid>
    options      TEXT NOT NULL,                      -- JSON: accounts, urls, pages, metrics, backfill
    state        TEXT NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    run_id       INTEGER REFERENCES crawl_runs (id) ON DELETE SET NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    message      TEXT
);
CREATE INDEX crawl_requests_open ON crawl_requests (state, id) WHERE state IN ('pending', 'running');

CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,                        -- credential_expired, no_credentials, source_failing, job_failed, cooldown
    subject    TEXT NOT NULL,                        -- credential name, source, job name, scope:target
    message    TEXT NOT NULL,
    delivered  INTEGER NOT NULL DEFAULT 0,           -- webhooks that accepted it
    suppressed INTEGER NOT NULL DEFAULT 0 CHECK (suppressed IN (0, 1))  -- 1: the same alert went out within repeat_after
);
CREATE INDEX alerts_by_time ON alerts (at);
CREATE INDEX alerts_by_subject ON alerts (kind, subject, at);

CREATE TABLE credential_states (
    name       TEXT PRIMARY KEY,                     -- the label from the secrets file, never a secret
    state      TEXT NOT NULL CHECK (state IN ('valid', 'expired')),
    since      INTEGER NOT NULL                      -- when it entered this state
);
