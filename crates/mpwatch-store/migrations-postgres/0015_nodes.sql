-- mpwatch schema version 15 on PostgreSQL: crawler nodes (../migrations/0015_nodes.sql).
-- The crawler lock is one row per node; a host's cooldown belongs to a node. Version
-- 14's `nodes` table, never written by a release, gives way to `crawler_lock`, which
-- now says the same: one row per node, its process, egress and heartbeat.

DROP TABLE nodes;

CREATE TABLE crawler_lock_by_node (
    node         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('service', 'crawl')),
    egress       TEXT,
    acquired_at  BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    status       TEXT
);
INSERT INTO crawler_lock_by_node (node, holder, role, egress, acquired_at, heartbeat_at, status)
    SELECT '', holder, role, NULL, acquired_at, heartbeat_at, status FROM crawler_lock;
DROP TABLE crawler_lock;
ALTER TABLE crawler_lock_by_node RENAME TO crawler_lock;
ALTER TABLE crawler_lock RENAME CONSTRAINT crawler_lock_by_node_pkey TO crawler_lock_pkey;
ALTER TABLE crawler_lock RENAME CONSTRAINT crawler_lock_by_node_role_check TO crawler_lock_role_check;

CREATE TABLE cooldowns_by_node (
    scope       TEXT NOT NULL CHECK (scope IN ('host', 'credential')),
    target      TEXT NOT NULL,
    node        TEXT NOT NULL DEFAULT '',
    until       BIGINT NOT NULL,
    level       BIGINT NOT NULL DEFAULT 1,
    reason      TEXT,
    started_at  BIGINT NOT NULL,
    CONSTRAINT cooldowns_pkey_by_node PRIMARY KEY (scope, target, node)
);
INSERT INTO cooldowns_by_node (scope, target, node, until, level, reason, started_at)
    SELECT scope, target, '', until, level, reason, started_at FROM cooldowns;
DROP TABLE cooldowns;
ALTER TABLE cooldowns_by_node RENAME TO cooldowns;
ALTER TABLE cooldowns RENAME CONSTRAINT cooldowns_pkey_by_node TO cooldowns_pkey;
ALTER TABLE cooldowns RENAME CONSTRAINT cooldowns_by_node_scope_check TO cooldowns_scope_check;
