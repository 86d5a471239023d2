-- mpwatch schema version 15: crawler nodes. Several `mpwatch run` processes, each with
-- its own egress (address, proxy) and limits, may share one PostgreSQL database; the
-- crawler lock that let one process fetch per database now lets one process fetch per
-- *node*. On SQLite there is one node, named '' (one machine: SQLite's write lock is
-- the database's), so nothing changes there but the table's shape.

-- One row per node that crawls or crawled: its process, egress, heartbeat and status.
-- (Version 4's table had one row, `id = 1`; its holder becomes node ''.)
CREATE TABLE crawler_lock_by_node (
    node         TEXT PRIMARY KEY,                   -- [node] name; '' on SQLite
    holder       TEXT NOT NULL,                      -- <pid>@<host>
    role         TEXT NOT NULL CHECK (role IN ('service', 'crawl')),
    egress       TEXT,                               -- its proxy without credentials, or 'direct'
    acquired_at  INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    status       TEXT                                -- what it is doing now
) WITHOUT ROWID;
INSERT INTO crawler_lock_by_node (node, holder, role, egress, acquired_at, heartbeat_at, status)
    SELECT '', holder, role, NULL, acquired_at, heartbeat_at, status FROM crawler_lock;
DROP TABLE crawler_lock;
ALTER TABLE crawler_lock_by_node RENAME TO crawler_lock;

-- A host's cooldown belongs to the node that saw the anti-crawl signal (WeChat limits
-- per address); a credential's is global (node ''), whichever node used it.
CREATE TABLE cooldowns_by_node (
    scope       TEXT NOT NULL CHECK (scope IN ('host', 'credential')),
    target      TEXT NOT NULL,                -- host name or credential label, never a secret
    node        TEXT NOT NULL DEFAULT '',     -- the node resting (hosts); '' for credentials
    until       INTEGER NOT NULL,
    level       INTEGER NOT NULL DEFAULT 1,
    reason      TEXT,
    started_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, target, node)
) WITHOUT ROWID;
INSERT INTO cooldowns_by_node (scope, target, node, until, level, reason, started_at)
    SELECT scope, target, '', until, level, reason, started_at FROM cooldowns;
DROP TABLE cooldowns;
ALTER TABLE cooldowns_by_node RENAME TO cooldowns;

-- Which node may use a credential set now: one at a time, so that its limit holds
-- across a cluster. On SQLite (one node) it stays empty.
CREATE TABLE credential_leases (
    name         TEXT PRIMARY KEY,                   -- the label from the secrets file, never a secret
    node         TEXT NOT NULL,
    lease_until  INTEGER NOT NULL,
    acquired_at  INTEGER NOT NULL
) WITHOUT ROWID;
