-- mpwatch schema version 2: what the crawler needs to survive crashes and back off.

-- Who holds a lease ("<pid>@<host>"), so a restarted crawler can take back the leases
-- of a process that died.
ALTER TABLE work_queue ADD COLUMN leased_by TEXT;

-- Anti-crawl cooldowns: a host or a credential rests until `until`; each new signal
-- while cooling doubles the next rest (level), up to the configured maximum.
CREATE TABLE cooldowns (
    scope       TEXT NOT NULL CHECK (scope IN ('host', 'credential')),
    target      TEXT NOT NULL,                -- host name or credential label, never a secret
    until       INTEGER NOT NULL,
    level       INTEGER NOT NULL DEFAULT 1,
    reason      TEXT,
    started_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, target)
) WITHOUT ROWID;

-- Raw pages kept for `mpwatch reparse` when crawl.archive_raw_pages is on.
CREATE TABLE raw_pages (
    id          INTEGER PRIMARY KEY,
    article_id  INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    fetched_at  INTEGER NOT NULL,
    url         TEXT NOT NULL,
    encoding    TEXT NOT NULL DEFAULT 'zstd',
    bytes       INTEGER NOT NULL,                -- uncompressed size
    body        BLOB NOT NULL
);
CREATE INDEX raw_pages_by_article ON raw_pages (article_id, fetched_at);
