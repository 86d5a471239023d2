-- Plain-SQL peer of `mpwatch index --full` (issue 12), for the sqlite3 CLI: the same
-- index_periods aggregates and index_values (five indices, competition ranks, rank
-- changes) with window functions and TEMP tables over the mpwatch database opened
-- read-only. The rules are those of index_pandas.py's docstring.
--
--   cd OUT_DIR && sqlite3 -readonly /path/to/mpwatch.db -cmd '.parameter set :now UNIX' \
--       < /path/to/bench/peers/index_sql.sql
--
-- writes values.csv and periods.csv into the working directory (see compare.py).
-- Parameters (`-cmd '.parameter set :NAME VALUE'`, each optional):
--   :now          unix seconds; articles published after it open no period (default: the clock)
--   :utc_offset   seconds east of UTC of the calendar (default 28800, Asia/Shanghai)
--   :day_age, :month_age, :late_factor   (defaults 86400, 604800, 1.25)
--   :ladder_end   the snapshot ladder's last age, seconds (default 2592000, 30 days)
-- SQLite has no time-zone database: the calendar is a fixed offset, exact for
-- Asia/Shanghai (no daylight saving since 1991), not for zones with DST.
-- Needs SQLite >= 3.35 with the math functions (ln), as Debian's sqlite3 has.

.bail on
CREATE TEMP TABLE config AS SELECT
    coalesce(:now, unixepoch()) AS now,
    coalesce(:utc_offset, 28800) AS off,
    coalesce(:day_age, 86400) AS day_age,
    coalesce(:month_age, 604800) AS month_age,
    coalesce(:late_factor, 1.25) * 1.0 AS late_factor,
    coalesce(:ladder_end, 2592000) AS ladder_end;

CREATE TEMP TABLE kinds (kind TEXT PRIMARY KEY, d REAL, target INTEGER);
INSERT INTO kinds SELECT 'day', 1.0, day_age FROM config;
INSERT INTO kinds SELECT 'week', 7.0, day_age FROM config;
INSERT INTO kinds SELECT 'month', 30.0, month_age FROM config;

-- Tracked articles (enabled accounts, not pending) with their local day.
CREATE TEMP TABLE arts AS
SELECT a.id AS article_id, a.account_id, a.mid, a.idx, a.published_at,
       date(a.published_at + (SELECT off FROM config), 'unixepoch') AS day
FROM articles a JOIN accounts acc ON acc.id = a.account_id
WHERE acc.enabled = 1 AND a.published_at IS NOT NULL AND a.status != 'pending';
CREATE INDEX temp.arts_id ON arts (article_id);

CREATE TEMP TABLE snaps AS
SELECT s.id, s.article_id, s.age_seconds AS age, s.observed_at, coalesce(s.reads, 0) AS reads,
       coalesce(s.likes, 0) AS likes, coalesce(s.wows, 0) AS wows, coalesce(s.shares, 0) AS shares,
       coalesce(s.comments, 0) AS comments
FROM metric_snapshots s JOIN arts a ON a.article_id = s.article_id
WHERE s.age_seconds IS NOT NULL;
CREATE INDEX temp.snaps_by_time ON snaps (article_id, observed_at, id);

-- Days with a publication up to now (any account, any status): they open the periods.
CREATE TEMP TABLE pub_days AS
SELECT DISTINCT date(published_at + (SELECT off FROM config), 'unixepoch') AS day
FROM articles WHERE published_at IS NOT NULL AND published_at <= (SELECT now FROM config);

-- The period of each kind holding each local day (weeks: Sunday first, strftime %w is 0
-- on Sunday), for the days of tracked articles and of publications.
CREATE TEMP TABLE day_periods AS
WITH days AS (SELECT day FROM arts UNION SELECT day FROM pub_days)
SELECT day, 'day' AS kind, day AS first, date(day, '+1 day') AS next FROM days
UNION ALL
SELECT day, 'week', date(day, '-' || strftime('%w', day) || ' days'),
       date(day, '-' || strftime('%w', day) || ' days', '+7 days') FROM days
UNION ALL
SELECT day, 'month', date(day, 'start of month'), date(day, 'start of month', '+1 month') FROM days;
CREATE INDEX temp.day_periods_day ON day_periods (day, kind);

CREATE TEMP TABLE periods AS
SELECT p.kind, k.d, k.target, p.first, p.next,
       unixepoch(p.first) - c.off AS period_start,
       unixepoch(p.next) - c.off AS period_end,
       julianday(p.next) - julianday(p.first) AS days,
       unixepoch(p.first, CASE p.kind WHEN 'day' THEN '-1 day' WHEN 'week' THEN '-7 days' ELSE '-1 month' END)
           - c.off AS prev_start
FROM (SELECT DISTINCT dp.kind, dp.first, dp.next FROM day_periods dp JOIN pub_days USING (day)) p
JOIN kinds k USING (kind) CROSS JOIN config c;

-- Each article's counts at its period's target age: the first snapshot of least age at
-- or after the target (order: age, observed_at, id), else the last of greatest age,
-- else zeros; without a value at the target, provisional while the ladder may still
-- count the article, missing (final) once it ended.
CREATE TEMP TABLE chosen AS
SELECT * FROM (
    SELECT t.target, s.*, s.age >= t.target AS final,
           row_number() OVER (PARTITION BY t.target, s.article_id ORDER BY
               s.age >= t.target DESC,
               CASE WHEN s.age >= t.target THEN s.age ELSE -s.age END,
               CASE WHEN s.age >= t.target THEN s.observed_at ELSE -s.observed_at END,
               CASE WHEN s.age >= t.target THEN s.id ELSE -s.id END) AS pick
    FROM snaps s CROSS JOIN (SELECT DISTINCT target FROM kinds) t)
WHERE pick = 1;
CREATE INDEX temp.chosen_key ON chosen (article_id, target);

CREATE TEMP TABLE taken AS
SELECT p.kind, p.period_start, a.account_id, a.article_id, a.mid, a.idx,
       min(coalesce(c.reads, 0), 100001) * 1.0 AS reads,
       coalesce(c.wows, 0) AS wows, coalesce(c.likes, 0) AS likes,
       coalesce(c.shares, 0) AS shares, coalesce(c.comments, 0) AS comments,
       coalesce(NOT c.final, 1)
           AND a.published_at > (SELECT now - ladder_end FROM config) AS provisional,
       coalesce(NOT c.final, 1)
           AND a.published_at <= (SELECT now - ladder_end FROM config) AS missing,
       coalesce(c.final AND c.age * 1.0 > p.target * (SELECT late_factor FROM config), 0) AS late
FROM arts a
JOIN day_periods dp ON dp.day = a.day
JOIN periods p ON p.kind = dp.kind AND p.first = dp.first
LEFT JOIN chosen c ON c.article_id = a.article_id AND c.target = p.target;

CREATE TEMP TABLE agg AS
SELECT kind, period_start, account_id,
       count(*) AS n, count(DISTINCT mid) AS pushes, sum(idx = 1) AS headlines,
       sum(reads) AS reads, total(CASE WHEN idx = 1 THEN reads END) AS reads_headline, max(reads) AS reads_max,
       sum(wows) AS wows, total(CASE WHEN idx = 1 THEN wows END) AS wows_headline, max(wows) AS wows_max,
       sum(likes) AS likes, total(CASE WHEN idx = 1 THEN likes END) AS likes_headline, max(likes) AS likes_max,
       sum(shares) AS shares, total(CASE WHEN idx = 1 THEN shares END) AS shares_headline, max(shares) AS shares_max,
       sum(comments) AS comments, sum(CASE WHEN idx = 1 THEN comments ELSE 0 END) AS comments_headline,
       max(comments) AS comments_max,
       sum(late) AS late_articles, max(provisional) AS provisional, sum(missing) AS missing_articles
FROM taken GROUP BY kind, period_start, account_id;

-- Reads gained. An article published before a period gains nothing in it unless it has
-- a snapshot inside (its last snapshots before the start and before the end are then
-- the same one), so the gains are summed over the pairs of an article and a computed
-- period holding its publication or one of its snapshots, each boundary's value being
-- the reads of the article's last snapshot (by observed_at, then id) strictly before
-- it. Whether a period has a value at all (some article qualifies) is a threshold: an
-- article qualifies in every period starting at or after `from` (the start of the
-- period of its publication when its first snapshot precedes that period's end, else
-- one second after its first snapshot).
CREATE TEMP TABLE own AS
SELECT a.article_id, a.account_id, a.published_at, dp.kind, unixepoch(dp.first) - c.off AS c_start,
       CASE WHEN f.t0 < unixepoch(dp.next) - c.off THEN unixepoch(dp.first) - c.off ELSE f.t0 + 1 END AS from_
FROM arts a
JOIN (SELECT article_id, min(observed_at) AS t0 FROM snaps GROUP BY article_id) f USING (article_id)
JOIN day_periods dp ON dp.day = a.day
CROSS JOIN config c;
CREATE INDEX temp.own_key ON own (article_id, kind);

-- The local days holding each article's snapshots, and their periods.
CREATE TEMP TABLE seen AS
SELECT DISTINCT article_id, date(observed_at + (SELECT off FROM config), 'unixepoch') AS day FROM snaps;
CREATE TEMP TABLE seen_periods AS
WITH days AS (SELECT DISTINCT day FROM seen)
SELECT day, 'day' AS kind, day AS first FROM days
UNION ALL SELECT day, 'week', date(day, '-' || strftime('%w', day) || ' days') FROM days
UNION ALL SELECT day, 'month', date(day, 'start of month') FROM days;
CREATE INDEX temp.seen_periods_day ON seen_periods (day, kind);
CREATE INDEX temp.periods_first ON periods (kind, first);
CREATE INDEX temp.periods_start ON periods (kind, period_start);

-- (CROSS JOIN: SQLite keeps the left table outer, here the large one, so that the
-- small periods table is searched through its index rather than scanned per row.)
CREATE TEMP TABLE pairs AS
WITH cand AS (
    SELECT s.article_id, p.kind, p.period_start, p.period_end
    FROM seen s CROSS JOIN seen_periods sp ON sp.day = s.day CROSS JOIN periods p ON p.kind = sp.kind AND p.first = sp.first
    UNION
    SELECT o.article_id, p.kind, p.period_start, p.period_end
    FROM own o CROSS JOIN periods p ON p.kind = o.kind AND p.period_start = o.c_start)
SELECT c.article_id, o.account_id, o.published_at, c.kind, c.period_start, c.period_end
FROM cand c CROSS JOIN own o ON o.article_id = c.article_id AND o.kind = c.kind
WHERE c.period_start >= o.from_;

CREATE TEMP TABLE total AS
SELECT kind, period_start, account_id, sum(gain) AS gain FROM (
    SELECT pr.kind, pr.period_start, pr.account_id,
           max((SELECT s.reads FROM snaps s WHERE s.article_id = pr.article_id AND s.observed_at < pr.period_end
                ORDER BY s.observed_at DESC, s.id DESC LIMIT 1)
               - CASE WHEN pr.published_at >= pr.period_start THEN 0 ELSE
                 (SELECT s.reads FROM snaps s WHERE s.article_id = pr.article_id AND s.observed_at < pr.period_start
                  ORDER BY s.observed_at DESC, s.id DESC LIMIT 1) END, 0) AS gain
    FROM pairs pr)
GROUP BY kind, period_start, account_id;
CREATE INDEX temp.total_key ON total (kind, period_start, account_id);

CREATE TEMP TABLE gained AS
SELECT p.kind, p.period_start, f.account_id, coalesce(t.gain, 0) / p.d AS reads_gained_per_day
FROM periods p
JOIN (SELECT account_id, kind, min(from_) AS from_ FROM own GROUP BY account_id, kind) f
    ON f.kind = p.kind AND p.period_start >= f.from_
LEFT JOIN total t ON t.kind = p.kind AND t.period_start = p.period_start AND t.account_id = f.account_id;

CREATE TEMP TABLE grid AS
SELECT x.id AS account_id, p.kind AS period_kind, p.period_start, p.period_end, p.first AS first_day, p.d,
       p.days, p.prev_start,
       coalesce(g.n, 0) AS n, coalesce(g.pushes, 0) AS pushes, coalesce(g.headlines, 0) AS headlines,
       coalesce(g.reads, 0) * 1.0 AS reads, coalesce(g.reads_headline, 0) * 1.0 AS reads_headline,
       max(coalesce(g.reads_max, 0), 0) * 1.0 AS reads_max,
       coalesce(g.wows, 0) * 1.0 AS wows, coalesce(g.wows_headline, 0) * 1.0 AS wows_headline,
       max(coalesce(g.wows_max, 0), 0) * 1.0 AS wows_max,
       coalesce(g.likes, 0) * 1.0 AS likes, coalesce(g.likes_headline, 0) * 1.0 AS likes_headline,
       max(coalesce(g.likes_max, 0), 0) * 1.0 AS likes_max,
       coalesce(g.shares, 0) * 1.0 AS shares, coalesce(g.shares_headline, 0) * 1.0 AS shares_headline,
       max(coalesce(g.shares_max, 0), 0) * 1.0 AS shares_max,
       coalesce(g.comments, 0) AS comments, coalesce(g.comments_headline, 0) AS comments_headline,
       max(coalesce(g.comments_max, 0), 0) AS comments_max,
       CASE WHEN coalesce(g.reads, 0) > 0 THEN (g.wows + g.likes) * 1.0 / g.reads ELSE 0.0 END AS engagement_rate,
       coalesce(g.reads, 0) / p.d AS read_rate,
       r.reads_gained_per_day,
       coalesce(g.late_articles, 0) AS late_articles,
       coalesce(g.provisional, 0) AS provisional,
       coalesce(g.missing_articles, 0) AS missing_articles
FROM periods p CROSS JOIN accounts x
LEFT JOIN agg g ON g.kind = p.kind AND g.period_start = p.period_start AND g.account_id = x.id
LEFT JOIN gained r ON r.kind = p.kind AND r.period_start = p.period_start AND r.account_id = x.id
WHERE x.enabled = 1;

CREATE TEMP TABLE vals AS
WITH i AS (
    SELECT account_id, period_kind, period_start, prev_start, days, n * 1.0 AS n, d,
           reads AS R, reads_headline AS Rt, reads_max AS Rmax, wows AS Z, wows_headline AS Zt, wows_max AS Zmax,
           likes AS L, likes_headline AS Lt, likes_max AS Lmax,
           shares AS RE, shares_headline AS REt, shares_max AS REmax
    FROM grid),
-- ln(x + 1) of every quotient the formulas use (per(a, b) = a / b, 0 when b is 0).
q AS (
    SELECT *,
        ln(max(R / d, 0) + 1) AS lRd, ln(max(CASE WHEN n > 0 THEN R / n ELSE 0 END, 0) + 1) AS lRn,
        ln(max(Rt / d, 0) + 1) AS lRtd, ln(max(Rmax, 0) + 1) AS lRmax,
        ln(max(10.0 * Z / d, 0) + 1) AS lZd10, ln(max(CASE WHEN n > 0 THEN 10.0 * Z / n ELSE 0 END, 0) + 1) AS lZn10,
        ln(max(10.0 * Zt / d, 0) + 1) AS lZtd10, ln(max(10.0 * Zmax, 0) + 1) AS lZmax10,
        ln(max(10.0 * (Z / d), 0) + 1) AS lZd, ln(max(10.0 * CASE WHEN n > 0 THEN Z / n ELSE 0 END, 0) + 1) AS lZn,
        ln(max(10.0 * (Zt / d), 0) + 1) AS lZtd,
        ln(max(10.0 * (L / d), 0) + 1) AS lLd, ln(max(10.0 * CASE WHEN n > 0 THEN L / n ELSE 0 END, 0) + 1) AS lLn,
        ln(max(10.0 * (Lt / d), 0) + 1) AS lLtd, ln(max(10.0 * Lmax, 0) + 1) AS lLmax,
        ln(max(10.0 * (RE / d), 0) + 1) AS lEd, ln(max(10.0 * CASE WHEN n > 0 THEN RE / n ELSE 0 END, 0) + 1) AS lEn,
        ln(max(10.0 * (REt / d), 0) + 1) AS lEtd, ln(max(10.0 * REmax, 0) + 1) AS lEmax,
        -- NRI: readAvg = round(R / n) (SQLite rounds half away from zero, as Rust does).
        CASE WHEN n > 0 THEN round(R / n) ELSE 0.0 END AS read_avg
    FROM i),
w AS (
    SELECT account_id, period_kind, period_start, prev_start, n,
        (0.8 * (0.40 * lRd + 0.45 * lRn + 0.15 * lRmax) + 0.2 * (0.40 * lZd10 + 0.45 * lZn10 + 0.15 * lZmax10))
          * (0.8 * (0.40 * lRd + 0.45 * lRn + 0.15 * lRmax) + 0.2 * (0.40 * lZd10 + 0.45 * lZn10 + 0.15 * lZmax10))
          * 10.0 AS v11,
        (0.30 * (0.85 * lRd + 0.15 * lZd10) + 0.30 * (0.85 * lRn + 0.15 * lZn10)
           + 0.30 * (0.85 * lRtd + 0.15 * lZtd10) + 0.10 * (0.85 * lRmax + 0.15 * lZmax10))
          * (0.30 * (0.85 * lRd + 0.15 * lZd10) + 0.30 * (0.85 * lRn + 0.15 * lZn10)
           + 0.30 * (0.85 * lRtd + 0.15 * lZtd10) + 0.10 * (0.85 * lRmax + 0.15 * lZmax10))
          * 10.0 AS v13,
        0.6 * (0.70 * lRd + 0.09 * lZd + 0.06 * lLd + 0.15 * lEd)
          + 0.2 * (0.70 * lRn + 0.09 * lZn + 0.06 * lLn + 0.15 * lEn)
          + 0.1 * (0.70 * lRtd + 0.09 * lZtd + 0.06 * lLtd + 0.15 * lEtd)
          + 0.1 * (0.70 * lRmax + 0.09 * lZmax10 + 0.06 * lLmax + 0.15 * lEmax) AS s142,
        0.6 * (0.85 * lRd + 0.09 * lZd + 0.06 * lLd)
          + 0.2 * (0.85 * lRn + 0.09 * lZn + 0.06 * lLn)
          + 0.1 * (0.85 * lRtd + 0.09 * lZtd + 0.06 * lLtd)
          + 0.1 * (0.85 * lRmax + 0.09 * lZmax10 + 0.06 * lLmax) AS s142ns,
        0.75 * (ln(max(R, 0) + 1) / ln(days * 800000.0 + 1) * 1000.0)
          + 0.05 * (ln(max(Rmax, 0) + 1) / ln(100000.0 + 1) * 1000.0)
          + 0.10 * (ln(max(read_avg, 0) + 1) / ln(100000.0 + 1) * 1000.0)
          + 0.05 * (ln(max(Rt, 0) + 1) / ln(days * 100000.0 + 1) * 1000.0)
          + 0.05 * (ln(max(L, 0) + 1) / ln(days * 80000.0 + 1) * 1000.0) AS nri
    FROM q),
long AS (
    SELECT account_id, period_kind, period_start, prev_start, n, 'wci-v11' AS index_name, v11 AS value FROM w
    UNION ALL SELECT account_id, period_kind, period_start, prev_start, n, 'wci-v13', v13 FROM w
    UNION ALL SELECT account_id, period_kind, period_start, prev_start, n, 'wci-v14.2', s142 * s142 * 1.2 * 10.0 FROM w
    UNION ALL SELECT account_id, period_kind, period_start, prev_start, n, 'wci-v14.2-noshare', s142ns * s142ns * 10.0 FROM w
    UNION ALL SELECT account_id, period_kind, period_start, prev_start, n, 'nri', nri FROM w)
-- Ranked among the accounts that published (n > 0); the silent ones get no rank.
SELECT *, CASE WHEN n > 0 THEN rank() OVER (PARTITION BY period_kind, period_start, index_name, n > 0
                                        ORDER BY value DESC) END AS rank
FROM long;
CREATE INDEX temp.vals_key ON vals (account_id, period_kind, period_start, index_name);

.headers on
.mode csv
.once values.csv
SELECT v.account_id, v.period_kind, v.period_start, v.index_name, printf('%!.17g', v.value) AS value, v.rank,
       b.rank - v.rank AS rank_change
FROM vals v LEFT JOIN vals b ON b.account_id = v.account_id AND b.period_kind = v.period_kind
     AND b.period_start = v.prev_start AND b.index_name = v.index_name
ORDER BY v.period_kind, v.period_start, v.index_name, v.account_id;
.once periods.csv
SELECT account_id, period_kind, period_start, period_end, first_day, d, n, pushes, headlines,
       reads, reads_headline, reads_max, wows, wows_headline, wows_max, likes, likes_headline, likes_max,
       shares, shares_headline, shares_max, comments, comments_headline, comments_max,
       printf('%!.17g', engagement_rate) AS engagement_rate, printf('%!.17g', read_rate) AS read_rate,
       CASE WHEN reads_gained_per_day IS NOT NULL THEN printf('%!.17g', reads_gained_per_day) END
           AS reads_gained_per_day, late_articles, provisional, missing_articles
FROM grid ORDER BY period_kind, period_start, account_id;
.mode list
.headers off
SELECT 'sqlite ' || sqlite_version() || ': ' || (SELECT count(*) FROM periods) || ' periods, '
       || (SELECT count(*) FROM grid) || ' account rows, ' || (SELECT count(*) FROM vals) || ' values';
