"""DuckDB peer of `mpwatch index --full` (issue 12): the same index_periods aggregates
and index_values (five indices, competition ranks, rank changes) as one would write
them in DuckDB SQL over the mpwatch database, ATTACHed read-only through DuckDB's
sqlite extension (sqlite_scanner). The rules are those of index_pandas.py's docstring.

    target/bench-venv/bin/python bench/peers/index_duckdb.py mpwatch.db OUT_DIR [--now UNIX]

Writes OUT_DIR/values.csv and OUT_DIR/periods.csv (see compare.py).

DuckDB cannot download its extensions here, so the sqlite extension comes from PyPI:
`pip install duckdb==1.5.5 duckdb-extension-sqlite-scanner==1.5.5` (the two versions
must match; no sqlite extension wheel exists for DuckDB 2.0 yet). Where DuckDB can
reach its extension repository, `INSTALL sqlite` does the same. Time zones come from
the ICU extension built into the Python wheel. DuckDB uses every core unless
--threads says otherwise.
"""

import argparse
import pathlib
import sys
import time

import duckdb

SETUP = """
CREATE MACRO ln1(x) AS ln(greatest(x, 0) + 1);
CREATE MACRO per(a, b) AS CASE WHEN b > 0 THEN a / b ELSE 0.0 END;
CREATE MACRO norm(x, m) AS CASE WHEN ln1(m) > 0 THEN ln1(x) / ln1(m) * 1000.0 ELSE 0.0 END;
CREATE MACRO local_day(t) AS (to_timestamp(t) AT TIME ZONE getvariable('tz'))::DATE;
CREATE MACRO local_midnight(day) AS epoch(day::TIMESTAMP AT TIME ZONE getvariable('tz'))::BIGINT;
-- First day of the period of `kind` holding `day` (weeks start on Sunday: dayofweek 0).
CREATE MACRO period_first(kind, day) AS CASE kind
    WHEN 'day' THEN day
    WHEN 'week' THEN day - dayofweek(day)::INTEGER
    ELSE date_trunc('month', day)::DATE END;
CREATE MACRO period_next(kind, first) AS CASE kind
    WHEN 'day' THEN first + 1
    WHEN 'week' THEN first + 7
    ELSE (first + INTERVAL 1 MONTH)::DATE END;
"""

LOAD = """
CREATE TEMP TABLE kinds AS
SELECT * FROM (VALUES ('day', 1.0::DOUBLE, getvariable('day_age')),
                      ('week', 7.0::DOUBLE, getvariable('day_age')),
                      ('month', 30.0::DOUBLE, getvariable('month_age'))) k(kind, d, target);

CREATE TEMP TABLE accts AS SELECT id AS account_id FROM mp.accounts WHERE enabled = 1;

CREATE TEMP TABLE arts AS
SELECT a.id AS article_id, a.account_id, a.mid, a.idx, a.published_at, local_day(a.published_at) AS day
FROM mp.articles a JOIN mp.accounts acc ON acc.id = a.account_id
WHERE acc.enabled = 1 AND a.published_at IS NOT NULL AND a.status <> 'pending';

CREATE TEMP TABLE snaps AS
SELECT s.id, s.article_id, s.age_seconds AS age, s.observed_at, coalesce(s.reads, 0) AS reads,
       coalesce(s.likes, 0) AS likes, coalesce(s.wows, 0) AS wows, coalesce(s.shares, 0) AS shares,
       coalesce(s.comments, 0) AS comments
FROM mp.metric_snapshots s SEMI JOIN arts a ON a.article_id = s.article_id
WHERE s.age_seconds IS NOT NULL;

-- Periods holding a publication (any account, any status) up to now.
CREATE TEMP TABLE periods AS
WITH firsts AS (
    SELECT DISTINCT k.kind, k.d, k.target, period_first(k.kind, p.day) AS first
    FROM (SELECT DISTINCT local_day(published_at) AS day FROM mp.articles
          WHERE published_at IS NOT NULL AND published_at <= getvariable('now')) p
    CROSS JOIN kinds k)
SELECT kind, d, target, first,
       local_midnight(first) AS period_start,
       local_midnight(period_next(kind, first)) AS period_end,
       (period_next(kind, first) - first)::DOUBLE AS days,
       local_midnight(period_first(kind, first - 1)) AS prev_start
FROM firsts;
"""

COMPUTE = """
-- Each article's counts at its period's target age: the first snapshot of least age at
-- or after it (order: age, observed_at, id), else the last of greatest age: provisional
-- while the ladder may still count the article, missing (final) once it ended.
CREATE TEMP TABLE chosen AS
SELECT t.target, s.article_id,
       coalesce(arg_min(s, (s.age, s.observed_at, s.id)) FILTER (WHERE s.age >= t.target),
                arg_max(s, (s.age, s.observed_at, s.id))) AS snap
FROM snaps s CROSS JOIN (SELECT DISTINCT target FROM kinds) t
GROUP BY ALL;

CREATE TEMP TABLE taken AS
SELECT p.kind, p.period_start, a.account_id, a.article_id, a.mid, a.idx,
       least(coalesce(c.snap.reads, 0), 100001)::DOUBLE AS reads,
       coalesce(c.snap.wows, 0) AS wows, coalesce(c.snap.likes, 0) AS likes,
       coalesce(c.snap.shares, 0) AS shares, coalesce(c.snap.comments, 0) AS comments,
       coalesce(c.snap.age < p.target, true)
           AND a.published_at > getvariable('now') - getvariable('ladder_end') AS provisional,
       coalesce(c.snap.age < p.target, true)
           AND a.published_at <= getvariable('now') - getvariable('ladder_end') AS missing,
       coalesce(c.snap.age >= p.target AND c.snap.age::DOUBLE > p.target::DOUBLE * getvariable('late_factor'),
                false) AS late
FROM arts a
JOIN periods p ON p.first = period_first(p.kind, a.day)
LEFT JOIN chosen c ON c.article_id = a.article_id AND c.target = p.target;

CREATE TEMP TABLE agg AS
SELECT kind, period_start, account_id,
       count(*) AS n, count(DISTINCT mid) AS pushes, count(*) FILTER (WHERE idx = 1) AS headlines,
       sum(reads) AS reads, coalesce(sum(reads) FILTER (WHERE idx = 1), 0) AS reads_headline,
       max(reads) AS reads_max,
       sum(wows)::DOUBLE AS wows, coalesce(sum(wows) FILTER (WHERE idx = 1), 0)::DOUBLE AS wows_headline,
       max(wows)::DOUBLE AS wows_max,
       sum(likes)::DOUBLE AS likes, coalesce(sum(likes) FILTER (WHERE idx = 1), 0)::DOUBLE AS likes_headline,
       max(likes)::DOUBLE AS likes_max,
       sum(shares)::DOUBLE AS shares, coalesce(sum(shares) FILTER (WHERE idx = 1), 0)::DOUBLE AS shares_headline,
       max(shares)::DOUBLE AS shares_max,
       sum(comments)::BIGINT AS comments, coalesce(sum(comments) FILTER (WHERE idx = 1), 0)::BIGINT AS comments_headline,
       max(comments) AS comments_max,
       count(*) FILTER (WHERE late) AS late_articles, bool_or(provisional) AS provisional,
       count(*) FILTER (WHERE missing) AS missing_articles
FROM taken GROUP BY ALL;

-- Reads gained. An article published before a period gains nothing in it unless it has
-- a snapshot inside (its last snapshots before the start and before the end are then
-- the same one), so the gains are summed over the pairs of an article and a computed
-- period holding its publication or one of its snapshots, with as-of joins on the last
-- snapshot strictly before each boundary (one row per observation instant: the last by
-- id). Whether a period has a value at all (some article qualifies) is a threshold: an
-- article qualifies in every period starting at or after `from` (the start of the
-- period of its publication when its first snapshot precedes that period's end, else
-- one second after its first snapshot).
CREATE TEMP TABLE last_snap AS
SELECT article_id, observed_at, arg_max(reads, id) AS reads FROM snaps GROUP BY ALL;

CREATE TEMP TABLE own AS
WITH f AS (SELECT article_id, min(observed_at) AS t0 FROM last_snap GROUP BY ALL),
     c AS (SELECT DISTINCT a.day, k.kind, local_midnight(period_first(k.kind, a.day)) AS c_start,
                  local_midnight(period_next(k.kind, period_first(k.kind, a.day))) AS c_end
           FROM arts a CROSS JOIN kinds k)
SELECT a.article_id, a.account_id, a.published_at, c.kind, c.c_start,
       CASE WHEN f.t0 < c.c_end THEN c.c_start ELSE f.t0 + 1 END AS "from"
FROM arts a JOIN f USING (article_id) JOIN c USING (day);

CREATE TEMP TABLE pairs AS
WITH seen_days AS (SELECT DISTINCT article_id, local_day(observed_at) AS day FROM last_snap),
     seen AS (SELECT DISTINCT s.article_id, k.kind, period_first(k.kind, s.day) AS first
              FROM seen_days s CROSS JOIN kinds k),
     cand AS (SELECT s.article_id, p.kind, p.period_start FROM seen s JOIN periods p USING (kind, first)
              UNION
              SELECT article_id, kind, c_start FROM own)
SELECT c.article_id, o.account_id, o.published_at, p.kind, p.period_start, p.period_end
FROM cand c
JOIN periods p ON p.kind = c.kind AND p.period_start = c.period_start
JOIN own o ON o.article_id = c.article_id AND o.kind = c.kind
WHERE p.period_start >= o."from";

CREATE TEMP TABLE gained AS
WITH gains AS (
    SELECT pr.kind, pr.period_start, pr.account_id,
           greatest(e.reads - CASE WHEN pr.published_at >= pr.period_start THEN 0 ELSE s.reads END, 0) AS gain
    FROM pairs pr
    ASOF JOIN last_snap e ON e.article_id = pr.article_id AND pr.period_end > e.observed_at
    ASOF LEFT JOIN last_snap s ON s.article_id = pr.article_id AND pr.period_start > s.observed_at),
     total AS (SELECT kind, period_start, account_id, sum(gain) AS gain FROM gains GROUP BY ALL),
     first_from AS (SELECT account_id, kind, min("from") AS "from" FROM own GROUP BY ALL)
SELECT p.kind, p.period_start, f.account_id, coalesce(t.gain, 0) / p.d AS reads_gained_per_day
FROM periods p
JOIN first_from f ON f.kind = p.kind AND p.period_start >= f."from"
LEFT JOIN total t ON t.kind = p.kind AND t.period_start = p.period_start AND t.account_id = f.account_id;

CREATE TEMP TABLE grid AS
SELECT x.account_id, p.kind AS period_kind, p.period_start, p.period_end, strftime(p.first, '%Y-%m-%d') AS first_day,
       p.d, p.days, p.prev_start,
       coalesce(g.n, 0) AS n, coalesce(g.pushes, 0) AS pushes, coalesce(g.headlines, 0) AS headlines,
       coalesce(g.reads, 0.0) AS reads, coalesce(g.reads_headline, 0.0) AS reads_headline,
       greatest(coalesce(g.reads_max, 0.0), 0.0) AS reads_max,
       coalesce(g.wows, 0.0) AS wows, coalesce(g.wows_headline, 0.0) AS wows_headline,
       greatest(coalesce(g.wows_max, 0.0), 0.0) AS wows_max,
       coalesce(g.likes, 0.0) AS likes, coalesce(g.likes_headline, 0.0) AS likes_headline,
       greatest(coalesce(g.likes_max, 0.0), 0.0) AS likes_max,
       coalesce(g.shares, 0.0) AS shares, coalesce(g.shares_headline, 0.0) AS shares_headline,
       greatest(coalesce(g.shares_max, 0.0), 0.0) AS shares_max,
       coalesce(g.comments, 0) AS comments, coalesce(g.comments_headline, 0) AS comments_headline,
       greatest(coalesce(g.comments_max, 0), 0) AS comments_max,
       per(coalesce(g.wows, 0.0) + coalesce(g.likes, 0.0), coalesce(g.reads, 0.0)) AS engagement_rate,
       coalesce(g.reads, 0.0) / p.d AS read_rate,
       r.reads_gained_per_day,
       coalesce(g.late_articles, 0) AS late_articles,
       coalesce(g.provisional, false)::INTEGER AS provisional,
       coalesce(g.missing_articles, 0) AS missing_articles
FROM periods p CROSS JOIN accts x
LEFT JOIN agg g ON g.kind = p.kind AND g.period_start = p.period_start AND g.account_id = x.account_id
LEFT JOIN gained r ON r.kind = p.kind AND r.period_start = p.period_start AND r.account_id = x.account_id;

CREATE TEMP TABLE wide AS
WITH i AS (
    SELECT account_id, period_kind, period_start, prev_start, days, n AS n_, d AS d_,
           reads AS R, reads_headline AS Rt, reads_max AS Rmax, wows AS Z, wows_headline AS Zt, wows_max AS Zmax,
           likes AS L, likes_headline AS Lt, likes_max AS Lmax,
           shares AS RE, shares_headline AS REt, shares_max AS REmax
    FROM grid)
SELECT account_id, period_kind, period_start, prev_start, n_,
    pow(0.8 * (0.40 * ln1(per(R, d_)) + 0.45 * ln1(per(R, n_)) + 0.15 * ln1(Rmax))
      + 0.2 * (0.40 * ln1(per(10.0 * Z, d_)) + 0.45 * ln1(per(10.0 * Z, n_)) + 0.15 * ln1(10.0 * Zmax)), 2) * 10.0
        AS "wci-v11",
    pow(0.30 * (0.85 * ln1(per(R, d_)) + 0.15 * ln1(per(10.0 * Z, d_)))
      + 0.30 * (0.85 * ln1(per(R, n_)) + 0.15 * ln1(per(10.0 * Z, n_)))
      + 0.30 * (0.85 * ln1(per(Rt, d_)) + 0.15 * ln1(per(10.0 * Zt, d_)))
      + 0.10 * (0.85 * ln1(Rmax) + 0.15 * ln1(10.0 * Zmax)), 2) * 10.0 AS "wci-v13",
    pow(0.6 * (0.70 * ln1(per(R, d_)) + 0.09 * ln1(10.0 * per(Z, d_)) + 0.06 * ln1(10.0 * per(L, d_)) + 0.15 * ln1(10.0 * per(RE, d_)))
      + 0.2 * (0.70 * ln1(per(R, n_)) + 0.09 * ln1(10.0 * per(Z, n_)) + 0.06 * ln1(10.0 * per(L, n_)) + 0.15 * ln1(10.0 * per(RE, n_)))
      + 0.1 * (0.70 * ln1(per(Rt, d_)) + 0.09 * ln1(10.0 * per(Zt, d_)) + 0.06 * ln1(10.0 * per(Lt, d_)) + 0.15 * ln1(10.0 * per(REt, d_)))
      + 0.1 * (0.70 * ln1(Rmax) + 0.09 * ln1(10.0 * Zmax) + 0.06 * ln1(10.0 * Lmax) + 0.15 * ln1(10.0 * REmax)), 2)
        * 1.2 * 10.0 AS "wci-v14.2",
    pow(0.6 * (0.85 * ln1(per(R, d_)) + 0.09 * ln1(10.0 * per(Z, d_)) + 0.06 * ln1(10.0 * per(L, d_)))
      + 0.2 * (0.85 * ln1(per(R, n_)) + 0.09 * ln1(10.0 * per(Z, n_)) + 0.06 * ln1(10.0 * per(L, n_)))
      + 0.1 * (0.85 * ln1(per(Rt, d_)) + 0.09 * ln1(10.0 * per(Zt, d_)) + 0.06 * ln1(10.0 * per(Lt, d_)))
      + 0.1 * (0.85 * ln1(Rmax) + 0.09 * ln1(10.0 * Zmax) + 0.06 * ln1(10.0 * Lmax)), 2) * 10.0
        AS "wci-v14.2-noshare",
    -- NRI: the period's real days; readAvg = round(R / n), half away from zero.
      0.75 * norm(R, days * 800000.0)
    + 0.05 * norm(Rmax, 100000.0)
    + 0.10 * norm(CASE WHEN n_ > 0 THEN round(R / n_) ELSE 0.0 END, 100000.0)
    + 0.05 * norm(Rt, days * 100000.0)
    + 0.05 * norm(L, days * 80000.0) AS nri
FROM i;

CREATE TEMP TABLE ranked AS
WITH v AS (UNPIVOT wide ON "wci-v11", "wci-v13", "wci-v14.2", "wci-v14.2-noshare", nri
           INTO NAME index_name VALUE value)
-- Ranked among the accounts that published (n > 0); the silent ones get no rank.
SELECT *, CASE WHEN n_ > 0 THEN rank() OVER (PARTITION BY period_kind, period_start, index_name, n_ > 0
                                          ORDER BY value DESC) END AS rank
FROM v;

CREATE TEMP TABLE vals AS
SELECT v.account_id, v.period_kind, v.period_start, v.index_name, v.value, v.rank, b.rank - v.rank AS rank_change
FROM ranked v LEFT JOIN ranked b ON b.account_id = v.account_id AND b.period_kind = v.period_kind
     AND b.index_name = v.index_name AND b.period_start = v.prev_start;
"""

WRITE = """
COPY (SELECT * FROM vals ORDER BY period_kind, period_start, index_name, account_id)
    TO '{out}/values.csv' (HEADER);
COPY (SELECT * EXCLUDE (days, prev_start) FROM grid ORDER BY period_kind, period_start, account_id)
    TO '{out}/periods.csv' (HEADER);
"""


def sqlite_extension(con: duckdb.DuckDBPyConnection) -> None:
    try:
        import duckdb_extension_sqlite_scanner as wheel  # the PyPI-packaged extension

        path = next(pathlib.Path(wheel.__file__).parent.glob(f"extensions/v{duckdb.__version__}/*.duckdb_extension"))
        con.load_extension(str(path))
    except (ImportError, StopIteration):
        con.install_extension("sqlite")
        con.load_extension("sqlite")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("out")
    ap.add_argument("--now", type=int, help="unix seconds (default: the clock); articles after it open no period")
    ap.add_argument("--tz", default="Asia/Shanghai")
    ap.add_argument("--day-age", type=int, default=86_400)
    ap.add_argument("--month-age", type=int, default=7 * 86_400)
    ap.add_argument("--late-factor", type=float, default=1.25)
    ap.add_argument("--ladder-end", type=int, default=30 * 86_400, help="the snapshot ladder's last age, seconds")
    ap.add_argument("--threads", type=int, help="DuckDB worker threads (default: every core)")
    args = ap.parse_args()
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    sqlite_extension(con)
    db = str(pathlib.Path(args.db).resolve()).replace("'", "''")
    con.execute(f"ATTACH '{db}' AS mp (TYPE sqlite, READ_ONLY)")
    variables = {
        "now": args.now if args.now is not None else int(time.time()),
        "tz": args.tz,
        "day_age": args.day_age,
        "month_age": args.month_age,
        "late_factor": args.late_factor,
        "ladder_end": args.ladder_end,
    }
    for name, value in variables.items():
        con.execute(f"SET VARIABLE {name} = ?", [value])
    con.execute(SETUP)
    t_setup = time.perf_counter()
    con.execute(LOAD)
    t_load = time.perf_counter()
    con.execute(COMPUTE)
    t_compute = time.perf_counter()
    con.execute(WRITE.format(out=str(out).replace("'", "''")))
    t_write = time.perf_counter()
    (periods,), (rows,), (values,) = (
        con.execute(q).fetchall()[0]
        for q in ("SELECT count(*) FROM periods", "SELECT count(*) FROM grid", "SELECT count(*) FROM vals")
    )
    print(
        f"duckdb {duckdb.__version__}: {periods} periods, {rows} account rows, {values} values; "
        f"start {t_setup - t0:.3f} s, load {t_load - t_setup:.3f} s, compute {t_compute - t_load:.3f} s, "
        f"write {t_write - t_compute:.3f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
