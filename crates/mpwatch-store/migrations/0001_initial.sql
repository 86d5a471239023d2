-- mpwatch schema version 1. Never edit a released migration: add a new file.
-- Times are INTEGER unix seconds (UTC). docs/schema.md documents every column.

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    biz         TEXT UNIQUE,                  -- __biz, NULL until known (alias / feed / short link)
    username    TEXT UNIQUE,                  -- gh_... original id
    alias       TEXT UNIQUE,                  -- 微信号
    nickname    TEXT,                         -- display name
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    added_at    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE account_groups (
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;
CREATE INDEX account_groups_by_name ON account_groups (name);

CREATE TABLE account_sources (
    id                    INTEGER PRIMARY KEY,
    account_id            INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind                  TEXT NOT NULL CHECK (kind IN ('feed', 'profile_ext', 'mp_backend', 'manual')),
    locator               TEXT NOT NULL,      -- feed URL, biz, alias or article URL; never a credential
    enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    health                TEXT NOT NULL DEFAULT 'unknown'
                          CHECK (health IN ('unknown', 'ok', 'degraded', 'failing', 'disabled')),
    last_ok_at            INTEGER,
    last_error            TEXT,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    next_retry_at         INTEGER,
    added_at              INTEGER NOT NULL,
    UNIQUE (account_id, kind, locator)
);
CREATE INDEX account_sources_by_locator ON account_sources (kind, locator);

CREATE TABLE articles (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    biz                TEXT NOT NULL,
    mid                INTEGER NOT NULL,
    idx                INTEGER NOT NULL CHECK (idx >= 1),
    sn                 TEXT,
    url                TEXT NOT NULL,         -- canonical https://mp.weixin.qq.com/s?__biz=..&mid=..&idx=..&sn=..
    short_url          TEXT,                  -- https://mp.weixin.qq.com/s/<token>, when known
    title              TEXT,
    digest             TEXT,
    author             TEXT,
    published_at       INTEGER,
    kind               TEXT NOT NULL DEFAULT 'article'
                       CHECK (kind IN ('article', 'picture', 'text', 'video', 'audio')),
    copyright          TEXT CHECK (copyright IN ('original', 'repost', 'none')),
    original_account   TEXT,                  -- for reposts: the account the article comes from
    original_url       TEXT,                  -- for reposts: the original article
    source_url         TEXT,                  -- 阅读原文 link
    cover_url          TEXT,
    comment_id         TEXT,
    content_text       TEXT,
    word_count         INTEGER,               -- characters of content_text, whitespace excluded
    image_count        INTEGER,
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'ok', 'deleted', 'blocked', 'unavailable')),
    status_reason      TEXT,                  -- the reason a blocked page states
    status_changed_at  INTEGER,
    content_hash       TEXT,                  -- SHA-256 (hex) of content_text
    first_seen_at      INTEGER NOT NULL,
    last_fetched_at    INTEGER,
    UNIQUE (biz, mid, idx)
);
CREATE INDEX articles_by_account_time ON articles (account_id, published_at);
CREATE INDEX articles_by_published ON articles (published_at);
CREATE UNIQUE INDEX articles_by_short_url ON articles (short_url) WHERE short_url IS NOT NULL;

CREATE TABLE metric_snapshots (
    id            INTEGER PRIMARY KEY,
    article_id    INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    observed_at   INTEGER NOT NULL,
    age_seconds   INTEGER,                    -- observed_at - published_at (NULL if unknown)
    rung_seconds  INTEGER,                    -- the ladder age this snapshot fills (NULL: ad hoc)
    reads         INTEGER,                    -- 阅读 read_num; 100001 means "10万+"
    reads_capped  INTEGER NOT NULL DEFAULT 0 CHECK (reads_capped IN (0, 1)),
    likes         INTEGER,                    -- 赞 old_like_num
    wows          INTEGER,                    -- 在看 like_num
    shares        INTEGER,                    -- 转发 share_count
    comments      INTEGER,                    -- comment_count
    source        TEXT NOT NULL               -- what gave the numbers: getappmsgext, appmsg_bar, ...
);
CREATE INDEX metric_snapshots_by_article_time ON metric_snapshots (article_id, observed_at);
CREATE UNIQUE INDEX metric_snapshots_one_per_rung
    ON metric_snapshots (article_id, rung_seconds) WHERE rung_seconds IS NOT NULL;

-- Snapshots are history: rows are added, never changed.
CREATE TRIGGER metric_snapshots_append_only
BEFORE UPDATE ON metric_snapshots
BEGIN
    SELECT RAISE(ABORT, 'metric_snapshots is append-only');
END;

CREATE TABLE crawl_runs (
    id                INTEGER PRIMARY KEY,
    trigger           TEXT NOT NULL CHECK (trigger IN ('schedule', 'adhoc', 'demo')),
    job               TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    accounts          INTEGER NOT NULL DEFAULT 0,
    articles_found    INTEGER NOT NULL DEFAULT 0,
    articles_new      INTEGER NOT NULL DEFAULT 0,
    articles_updated  INTEGER NOT NULL DEFAULT 0,
    snapshots         INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    result            TEXT NOT NULL DEFAULT 'running'
                      CHECK (result IN ('running', 'ok', 'partial', 'failed', 'interrupted')),
    message           TEXT
);
CREATE INDEX crawl_runs_by_start ON crawl_runs (started_at);

CREATE TABLE fetch_log (
    id            INTEGER PRIMARY KEY,
    crawl_run_id  INTEGER REFERENCES crawl_runs (id) ON DELETE SET NULL,
    at            INTEGER NOT NULL,
    url_class     TEXT NOT NULL,              -- article_page, list_api, count_api, feed, robots
    target        TEXT,                       -- canonical URL or biz; never a credential
    http_status   INTEGER,                    -- NULL when no response arrived
    outcome       TEXT NOT NULL,              -- ok, deleted, verification, throttled, timeout, ...
    bytes         INTEGER,
    duration_ms   INTEGER
);
CREATE INDEX fetch_log_by_time ON fetch_log (at);

CREATE TABLE work_queue (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,                -- list, page, metrics, feed, ...
    target      TEXT NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,   -- higher first
    not_before  INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (kind, target)
);
CREATE INDEX work_queue_ready ON work_queue (state, not_before, priority);

CREATE TABLE schema_migrations (
    version          INTEGER PRIMARY KEY,
    applied_at       INTEGER NOT NULL,
    mpwatch_version  TEXT NOT NULL
);

-- Latest snapshot of each article.
CREATE VIEW v_latest_metrics AS
SELECT s.article_id,
       s.observed_at,
       datetime(s.observed_at + 28800, 'unixepoch') AS observed_at_shanghai,
       s.age_seconds,
       s.reads,
       s.reads_capped,
       s.likes,
       s.wows,
       s.shares,
       s.comments,
       s.source,
       (SELECT count(*) FROM metric_snapshots c WHERE c.article_id = s.article_id) AS snapshot_count
FROM metric_snapshots s
WHERE s.id = (
    SELECT id FROM metric_snapshots l
    WHERE l.article_id = s.article_id
    ORDER BY l.observed_at DESC, l.id DESC
    LIMIT 1
);

-- Articles with their account and latest counts; local times are Asia/Shanghai (UTC+8,
-- no daylight saving since 1991).
CREATE VIEW v_articles AS
SELECT a.id,
       a.account_id,
       coalesce(acc.nickname, acc.alias, a.biz) AS account_name,
       a.biz,
       a.mid,
       a.idx,
       a.title,
       a.author,
       a.kind,
       a.copyright,
       a.status,
       a.url,
       a.published_at,
       datetime(a.published_at + 28800, 'unixepoch') AS published_at_shanghai,
       datetime(a.first_seen_at + 28800, 'unixepoch') AS first_seen_at_shanghai,
       datetime(a.last_fetched_at + 28800, 'unixepoch') AS last_fetched_at_shanghai,
       m.observed_at AS metrics_observed_at,
       m.observed_at_shanghai AS metrics_observed_at_shanghai,
       m.reads,
       m.reads_capped,
       m.likes,
       m.wows,
       m.shares,
       m.comments,
       coalesce(m.snapshot_count, 0) AS snapshot_count
FROM articles a
LEFT JOIN accounts acc ON acc.id = a.account_id
LEFT JOIN v_latest_metrics m ON m.article_id = a.id;
