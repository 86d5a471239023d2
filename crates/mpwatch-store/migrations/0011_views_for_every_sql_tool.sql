-- mpwatch schema version 11: views every SQL tool reads right.
--
-- DuckDB binds a view of an attached SQLite file itself, and one SQLite-only function
-- in it (datetime) made it read every column of v_articles and v_latest_metrics as
-- VARCHAR (so ORDER BY reads sorted text) or fail. The local times of the views now come
-- from `local_days` (the days 2000-01-01 to 2099-12-31 as 'YYYY-MM-DD', by day number
-- since 1970-01-01) and printf, which both know; integer division is written
-- (a - a % b) / b, exact in both. A time outside those years shows as NULL.
-- v_articles gains the unix columns `first_seen_at` and `last_fetched_at` beside their
-- local texts (at the end, so positional readers keep theirs).
CREATE TABLE local_days (
    day   INTEGER PRIMARY KEY,                       -- days since 1970-01-01
    date  TEXT NOT NULL                              -- YYYY-MM-DD
);
WITH RECURSIVE d(day) AS (SELECT 10957 UNION ALL SELECT day + 1 FROM d WHERE day < 47481)
INSERT INTO local_days (day, date) SELECT day, date(day * 86400, 'unixepoch') FROM d;

DROP VIEW v_articles;
DROP VIEW v_latest_metrics;

-- Latest snapshot of each article; local times are Asia/Shanghai (UTC+8, no daylight
-- saving since 1991).
CREATE VIEW v_latest_metrics AS
SELECT s.article_id,
       s.observed_at,
       od.date || ' ' || printf('%02d:%02d:%02d', CAST(((s.observed_at + 28800) % 86400 - (s.observed_at + 28800) % 3600) / 3600 AS INTEGER), CAST(((s.observed_at + 28800) % 3600 - (s.observed_at + 28800) % 60) / 60 AS INTEGER), CAST((s.observed_at + 28800) % 60 AS INTEGER)) AS observed_at_shanghai,
       s.age_seconds,
       s.reads,
       s.reads_capped,
       s.likes,
       s.wows,
       s.shares,
       s.comments,
       s.source,
       (SELECT count(c.id) FROM metric_snapshots c WHERE c.article_id = s.article_id) AS snapshot_count
FROM metric_snapshots s
LEFT JOIN local_days od ON od.day = ((s.observed_at + 28800) - (s.observed_at + 28800) % 86400) / 86400
WHERE s.id = (
    SELECT l.id FROM metric_snapshots l
    WHERE l.article_id = s.article_id
    ORDER BY l.observed_at DESC, l.id DESC
    LIMIT 1
);

-- Articles with their account and latest counts; local times are Asia/Shanghai.
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
       pd.date || ' ' || printf('%02d:%02d:%02d', CAST(((a.published_at + 28800) % 86400 - (a.published_at + 28800) % 3600) / 3600 AS INTEGER), CAST(((a.published_at + 28800) % 3600 - (a.published_at + 28800) % 60) / 60 AS INTEGER), CAST((a.published_at + 28800) % 60 AS INTEGER)) AS published_at_shanghai,
       fd.date || ' ' || printf('%02d:%02d:%02d', CAST(((a.first_seen_at + 28800) % 86400 - (a.first_seen_at + 28800) % 3600) / 3600 AS INTEGER), CAST(((a.first_seen_at + 28800) % 3600 - (a.first_seen_at + 28800) % 60) / 60 AS INTEGER), CAST((a.first_seen_at + 28800) % 60 AS INTEGER)) AS first_seen_at_shanghai,
       ld.date || ' ' || printf('%02d:%02d:%02d', CAST(((a.last_fetched_at + 28800) % 86400 - (a.last_fetched_at + 28800) % 3600) / 3600 AS INTEGER), CAST(((a.last_fetched_at + 28800) % 3600 - (a.last_fetched_at + 28800) % 60) / 60 AS INTEGER), CAST((a.last_fetched_at + 28800) % 60 AS INTEGER)) AS last_fetched_at_shanghai,
       m.observed_at AS metrics_observed_at,
       m.observed_at_shanghai AS metrics_observed_at_shanghai,
       m.reads,
       m.reads_capped,
       m.likes,
       m.wows,
       m.shares,
       m.comments,
       coalesce(m.snapshot_count, 0) AS snapshot_count,
       a.first_seen_at,
       a.last_fetched_at
FROM articles a
LEFT JOIN accounts acc ON acc.id = a.account_id
LEFT JOIN v_latest_metrics m ON m.article_id = a.id
LEFT JOIN local_days pd ON pd.day = ((a.published_at + 28800) - (a.published_at + 28800) % 86400) / 86400
LEFT JOIN local_days fd ON fd.day = ((a.first_seen_at + 28800) - (a.first_seen_at + 28800) % 86400) / 86400
LEFT JOIN local_days ld ON ld.day = ((a.last_fetched_at + 28800) - (a.last_fetched_at + 28800) % 86400) / 86400;
