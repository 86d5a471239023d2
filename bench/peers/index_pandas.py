"""pandas peer of `mpwatch index --full` (issue 12): what a pandas user would write to
compute mpwatch's index_periods aggregates and index_values (five indices, competition
ranks, rank changes) from an mpwatch database. Vectorised throughout: read_sql,
sort/drop_duplicates, merge, merge_asof, groupby; no per-row Python loop (the only
Python loops run over the 3 period kinds and the 2 target ages).

    target/bench-venv/bin/python bench/peers/index_pandas.py mpwatch.db OUT_DIR [--now UNIX]

Writes OUT_DIR/values.csv (account_id, period_kind, period_start, index_name, value,
rank, rank_change) and OUT_DIR/periods.csv (the columns of index_periods but
computed_at). bench/peers/compare.py checks them against mpwatch's tables.

The rules, as crates/mpwatch-index computes them (compute.rs, formulas.rs, lib.rs):
- periods: every day, Sunday-Saturday week and month (local calendar of --tz) holding
  the publication of some article (any account, any status) published at or before
  --now; each is computed for every enabled account (zeros when it published nothing).
- articles: of enabled accounts, status != 'pending'; snapshots with age_seconds set.
- the value of an article: its first snapshot (in (observed_at, id) order) of least age
  >= target (86400 s for days and weeks, 7 days for months), late when age > target *
  late_factor; else its last snapshot of greatest age; else zeros. Without a snapshot at
  or after the target, the article is provisional while now < published_at +
  ladder_end (the snapshot ladder's last age, 30 days by default), else missing (final).
  Reads are capped at 100001.
- reads_gained_per_day: over the account's articles published before the period's end,
  (reads last observed before the end) - (reads last observed before the start, or 0
  when published inside), floored at 0, summed, / d; articles lacking either
  observation are left out; NULL when none is left.
- indices: WCI V11, V13, V14.2, V14.2-noshare with d = 1/7/30; NRI with the period's
  real days (1, 7, 28-31) and readAvg = round(R/n) half away from zero.
- rank: competition ranking ("1224"), higher first, per kind/period/index, among the
  accounts that published in the period (n > 0; the others have no rank);
  rank_change = rank in the previous calendar period - rank (NULL when either is
  unranked or that period was not computed).
"""

import argparse
import pathlib
import sqlite3
import sys
import time

import numpy as np
import pandas as pd

READS_CAP = 100_001
KINDS = ("day", "week", "month")
D = {"day": 1.0, "week": 7.0, "month": 30.0}
INDICES = ("wci-v11", "wci-v13", "wci-v14.2", "wci-v14.2-noshare", "nri")
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
METRICS = ("reads", "likes", "wows", "shares", "comments")


def local_days(seconds: pd.Series, tz: str) -> pd.Series:
    """Local calendar day (naive midnight) of unix seconds."""
    local = pd.to_datetime(seconds, unit="s", utc=True).dt.tz_convert(tz)
    return local.dt.tz_localize(None).dt.normalize()


def unix(naive_local: pd.Series, tz: str) -> pd.Series:
    """Unix seconds of naive local times."""
    return (naive_local.dt.tz_localize(tz) - EPOCH) // pd.Timedelta(seconds=1)


def containing(days: pd.Series, kind: str) -> tuple[pd.Series, pd.Series]:
    """First day and the day after the last of the period of `kind` holding each day."""
    if kind == "day":
        first = days
        return first, first + pd.Timedelta(days=1)
    if kind == "week":  # Sunday first: pandas' dayofweek is Monday = 0
        first = days - pd.to_timedelta((days.dt.day_of_week + 1) % 7, unit="D")
        return first, first + pd.Timedelta(days=7)
    first = days - pd.to_timedelta(days.dt.day - 1, unit="D")
    return first, first + pd.offsets.MonthBegin(1)


def period_table(days: pd.Series, tz: str) -> pd.DataFrame:
    """For each local day: one row per kind with its period (start, end, first_day, d,
    days) and the start of the previous period of that kind."""
    days = pd.Series(days.unique()).sort_values(ignore_index=True)
    frames = []
    for kind in KINDS:
        first, nxt = containing(days, kind)
        prev_first, _ = containing(first - pd.Timedelta(days=1), kind)
        frames.append(
            pd.DataFrame(
                {
                    "day": days,
                    "period_kind": kind,
                    "period_start": unix(first, tz),
                    "period_end": unix(nxt, tz),
                    "first_day": first.dt.strftime("%Y-%m-%d"),
                    "d": D[kind],
                    "days": (nxt - first).dt.days.astype(float),
                    "prev_start": unix(prev_first, tz),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def take(articles: pd.DataFrame, snaps: pd.DataFrame, target: int, late_factor: float, settled_before: int) -> pd.DataFrame:
    """The counts of each article at `target` age (see the module doc)."""
    ordered = snaps.sort_values(["article_id", "age", "observed_at", "id"])
    at_or_after = ordered[ordered["age"] >= target].drop_duplicates("article_id", keep="first")
    before = ordered[~ordered["article_id"].isin(at_or_after["article_id"])]
    before = before.drop_duplicates("article_id", keep="last")
    chosen = pd.concat(
        [
            at_or_after.assign(provisional=False, late=at_or_after["age"] > target * late_factor),
            before.assign(provisional=True, late=False),
        ]
    )[["article_id", *METRICS, "provisional", "late"]]
    taken = articles.merge(chosen, on="article_id", how="left")
    # Never observed: zeros.
    taken[list(METRICS)] = taken[list(METRICS)].fillna(0).astype("int64")
    unvalued = taken["provisional"].fillna(True).astype(bool)
    # Past the ladder's end an article gets no more counts: missing for good, not pending.
    settled = taken["published_at"] <= settled_before
    taken["provisional"] = unvalued & ~settled
    taken["missing"] = unvalued & settled
    taken["late"] = taken["late"].fillna(False).astype(bool)
    return taken


def aggregates(taken: pd.DataFrame) -> pd.DataFrame:
    """Per (period, account): the index_periods sums, headline sums and maxima."""
    t = taken.assign(
        reads=taken["reads"].clip(upper=READS_CAP).astype(float),
        head=(taken["idx"] == 1),
    )
    for m in METRICS:
        t[m + "_headline"] = t[m].where(t["head"], 0)
    g = t.groupby(["period_kind", "period_start", "account_id"], sort=False).agg(
        n=("article_id", "size"),
        pushes=("mid", "nunique"),
        headlines=("head", "sum"),
        reads=("reads", "sum"),
        reads_headline=("reads_headline", "sum"),
        reads_max=("reads", "max"),
        wows=("wows", "sum"),
        wows_headline=("wows_headline", "sum"),
        wows_max=("wows", "max"),
        likes=("likes", "sum"),
        likes_headline=("likes_headline", "sum"),
        likes_max=("likes", "max"),
        shares=("shares", "sum"),
        shares_headline=("shares_headline", "sum"),
        shares_max=("shares", "max"),
        comments=("comments", "sum"),
        comments_headline=("comments_headline", "sum"),
        comments_max=("comments", "max"),
        late_articles=("late", "sum"),
        provisional=("provisional", "any"),
        missing_articles=("missing", "sum"),
    )
    return g.reset_index()


def reads_gained(articles: pd.DataFrame, snaps: pd.DataFrame, periods: pd.DataFrame, tz: str) -> pd.DataFrame:
    """reads_gained_per_day per (period, account) where some article qualifies.

    Not every (article, period) pair is visited: an article published before a period
    gains nothing in it unless it has a snapshot inside (its last snapshots before the
    start and before the end are then the same one), so the gains are summed over the
    pairs of an article and a computed period holding its publication or one of its
    snapshots. Whether a period has a value at all (some article qualifies) is a
    threshold: an article qualifies in every period starting at or after `from` (the
    start of the period of its publication when its first snapshot precedes that
    period's end, else one second after its first snapshot), so a period has a value
    for the accounts whose least `from` is at or before its start."""
    # One row per observation instant (the last by id), in time order per article.
    last = snaps.sort_values(["observed_at", "id"]).drop_duplicates(["article_id", "observed_at"], keep="last")
    last = last[["article_id", "observed_at", "reads"]].sort_values("observed_at")
    first_obs = last.groupby("article_id", as_index=False)["observed_at"].min().rename(columns={"observed_at": "t0"})

    # The periods (of each kind, computed or not) holding each publication and each snapshot.
    pub = articles[["article_id", "account_id", "published_at", "day"]]
    own = pub.merge(period_table(pub["day"], tz)[["day", "period_kind", "period_start", "period_end"]], on="day")
    own = own.drop(columns="day").merge(first_obs, on="article_id")  # never observed: never qualifies
    own["from"] = own["period_start"].where(own["t0"] < own["period_end"], own["t0"] + 1)
    obs = last[["article_id", "observed_at"]].assign(day=local_days(last["observed_at"], tz))
    obs_days = period_table(obs["day"], tz)[["day", "period_kind", "period_start"]]
    seen = obs[["article_id", "day"]].drop_duplicates().merge(obs_days, on="day")
    seen = seen.drop(columns="day").drop_duplicates()

    # Candidate pairs: computed periods holding the publication or a snapshot, where the
    # article qualifies.
    pairs = pd.concat([own[["article_id", "period_kind", "period_start"]], seen]).drop_duplicates()
    pairs = pairs.merge(periods[["period_kind", "period_start", "period_end", "d"]], on=["period_kind", "period_start"])
    pairs = pairs.merge(own[["article_id", "account_id", "published_at", "period_kind", "from"]],
                        on=["article_id", "period_kind"])
    pairs = pairs[pairs["period_start"] >= pairs["from"]]

    def before(frame: pd.DataFrame, bound: str, name: str) -> pd.DataFrame:
        # The last snapshot strictly before `bound`: an as-of join.
        frame = pd.merge_asof(
            frame.sort_values(bound), last.rename(columns={"reads": name}), left_on=bound,
            right_on="observed_at", by="article_id", allow_exact_matches=False, direction="backward",
        )
        return frame.drop(columns="observed_at")

    pairs = before(pairs, "period_end", "at_end")
    inside = pairs["published_at"] >= pairs["period_start"]
    older = before(pairs[~inside], "period_start", "at_start")
    pairs = pd.concat([pairs[inside].assign(at_start=0), older])
    pairs = pairs.assign(gain=(pairs["at_end"] - pairs["at_start"]).clip(lower=0).astype("int64"))
    total = pairs.groupby(["period_kind", "period_start", "account_id"], as_index=False)["gain"].sum()

    # The (period, account) rows with a value: periods starting at or after the account's
    # least `from` of that kind.
    start = own.groupby(["account_id", "period_kind"], as_index=False)["from"].min()
    g = periods[["period_kind", "period_start", "d"]].merge(start, on="period_kind")
    g = g[g["period_start"] >= g["from"]].merge(total, on=["period_kind", "period_start", "account_id"], how="left")
    g["reads_gained_per_day"] = g["gain"].fillna(0).astype("int64") / g["d"]
    return g[["period_kind", "period_start", "account_id", "reads_gained_per_day"]]


def ln1(x):
    return np.log(np.maximum(x, 0.0) + 1.0)


def per(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def indices(p: pd.DataFrame) -> pd.DataFrame:
    """The five index values per row of `p` (index_periods columns plus d, days)."""
    R, n, d = p["reads"].to_numpy(float), p["n"].to_numpy(float), p["d"].to_numpy(float)
    Rt, Rmax = p["reads_headline"].to_numpy(float), p["reads_max"].to_numpy(float)
    Z, Zt, Zmax = (p[c].to_numpy(float) for c in ("wows", "wows_headline", "wows_max"))
    L, Lt, Lmax = (p[c].to_numpy(float) for c in ("likes", "likes_headline", "likes_max"))
    RE, REt, REmax = (p[c].to_numpy(float) for c in ("shares", "shares_headline", "shares_max"))

    reads = 0.40 * ln1(per(R, d)) + 0.45 * ln1(per(R, n)) + 0.15 * ln1(Rmax)
    wows = 0.40 * ln1(per(10.0 * Z, d)) + 0.45 * ln1(per(10.0 * Z, n)) + 0.15 * ln1(10.0 * Zmax)
    v11 = (0.8 * reads + 0.2 * wows) ** 2 * 10.0

    o = 0.85 * ln1(per(R, d)) + 0.15 * ln1(per(10.0 * Z, d))
    a = 0.85 * ln1(per(R, n)) + 0.15 * ln1(per(10.0 * Z, n))
    h = 0.85 * ln1(per(Rt, d)) + 0.15 * ln1(per(10.0 * Zt, d))
    pk = 0.85 * ln1(Rmax) + 0.15 * ln1(10.0 * Zmax)
    v13 = (0.30 * o + 0.30 * a + 0.30 * h + 0.10 * pk) ** 2 * 10.0

    def v142_sum(f):
        return (
            0.6 * f(per(R, d), per(Z, d), per(L, d), per(RE, d))
            + 0.2 * f(per(R, n), per(Z, n), per(L, n), per(RE, n))
            + 0.1 * f(per(Rt, d), per(Zt, d), per(Lt, d), per(REt, d))
            + 0.1 * f(Rmax, Zmax, Lmax, REmax)
        )

    v142 = v142_sum(
        lambda r, z, l, e: 0.70 * ln1(r) + 0.09 * ln1(10.0 * z) + 0.06 * ln1(10.0 * l) + 0.15 * ln1(10.0 * e)
    ) ** 2 * 1.2 * 10.0
    v142ns = v142_sum(lambda r, z, l, e: 0.85 * ln1(r) + 0.09 * ln1(10.0 * z) + 0.06 * ln1(10.0 * l)) ** 2 * 10.0

    def norm(x, m):
        den = ln1(m)
        return np.where(den > 0, ln1(x) / np.where(den > 0, den, 1.0) * 1000.0, 0.0)

    days = p["days"].to_numpy(float)
    # round() half away from zero, as Rust's f64::round (numpy's round is half-even).
    read_avg = np.where(n > 0, np.floor(per(R, n) + 0.5), 0.0)
    nri = (
        0.75 * norm(R, days * 800_000.0)
        + 0.05 * norm(Rmax, 100_000.0)
        + 0.10 * norm(read_avg, 100_000.0)
        + 0.05 * norm(Rt, days * 100_000.0)
        + 0.05 * norm(L, days * 80_000.0)
    )
    return pd.DataFrame(dict(zip(INDICES, (v11, v13, v142, v142ns, nri))), index=p.index)


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
    args = ap.parse_args()
    now = args.now if args.now is not None else int(time.time())
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    accounts = pd.read_sql_query("SELECT id AS account_id FROM accounts WHERE enabled = 1", con)
    published = pd.read_sql_query(
        "SELECT DISTINCT published_at FROM articles WHERE published_at IS NOT NULL AND published_at <= ?",
        con, params=(now,),
    )
    articles = pd.read_sql_query(
        """SELECT a.id AS article_id, a.account_id, a.mid, a.idx, a.published_at
           FROM articles a JOIN accounts acc ON acc.id = a.account_id
           WHERE acc.enabled = 1 AND a.published_at IS NOT NULL AND a.status != 'pending'""",
        con,
    )
    snaps = pd.read_sql_query(
        """SELECT id, article_id, age_seconds AS age, observed_at, coalesce(reads, 0) AS reads,
                  coalesce(likes, 0) AS likes, coalesce(wows, 0) AS wows, coalesce(shares, 0) AS shares,
                  coalesce(comments, 0) AS comments
           FROM metric_snapshots WHERE age_seconds IS NOT NULL""",
        con,
    )
    con.close()
    t_load = time.perf_counter()

    snaps = snaps[snaps["article_id"].isin(articles["article_id"])]
    # Periods: those holding a publication (any article up to now).
    by_day = period_table(local_days(published["published_at"], args.tz), args.tz)
    periods = by_day.drop(columns="day").drop_duplicates(["period_kind", "period_start"], ignore_index=True)
    # Each tracked article in its period of each kind, when that period is computed (an
    # article published after --now counts only in a period some earlier one opened).
    articles["day"] = local_days(articles["published_at"], args.tz)
    art_days = period_table(articles["day"], args.tz)[["day", "period_kind", "period_start"]]
    placed = articles.merge(art_days, on="day").merge(
        periods[["period_kind", "period_start"]], on=["period_kind", "period_start"]
    )

    agg = []
    for kind in KINDS:
        target = args.month_age if kind == "month" else args.day_age
        mine = placed[placed["period_kind"] == kind]
        agg.append(aggregates(take(mine, snaps, target, args.late_factor, now - args.ladder_end)))
    agg = pd.concat(agg, ignore_index=True)

    grid = periods.merge(accounts, how="cross").merge(
        agg, on=["period_kind", "period_start", "account_id"], how="left"
    )
    count_cols = [c for c in agg.columns if c not in ("period_kind", "period_start", "account_id")]
    grid[count_cols] = grid[count_cols].fillna(0)
    for c in ("n", "pushes", "headlines", "comments", "comments_headline", "comments_max", "late_articles",
              "missing_articles"):
        grid[c] = grid[c].astype("int64")
    grid["provisional"] = grid["provisional"].astype(bool).astype("int64")
    # Maxima start from 0 (an account with nothing has 0).
    for c in ("reads_max", "wows_max", "likes_max", "shares_max", "comments_max"):
        grid[c] = grid[c].clip(lower=0)
    for c in ("reads", "reads_headline", "reads_max", "wows", "wows_headline", "wows_max", "likes",
              "likes_headline", "likes_max", "shares", "shares_headline", "shares_max"):
        grid[c] = grid[c].astype(float)
    grid["engagement_rate"] = per(grid["wows"] + grid["likes"], grid["reads"])
    grid["read_rate"] = grid["reads"] / grid["d"]
    grid = grid.merge(
        reads_gained(articles, snaps, periods, args.tz), on=["period_kind", "period_start", "account_id"], how="left"
    )

    values = pd.concat([grid[["account_id", "period_kind", "period_start", "prev_start", "n"]], indices(grid)], axis=1)
    values = values.melt(
        id_vars=["account_id", "period_kind", "period_start", "prev_start", "n"],
        value_vars=list(INDICES), var_name="index_name", value_name="value",
    )
    # Ranked among the accounts that published; the silent ones get no rank.
    values["rank"] = (
        values["value"].where(values["n"] > 0)
        .groupby([values["period_kind"], values["period_start"], values["index_name"]])
        .rank(method="min", ascending=False)
        .astype("Int64")
    )
    before = values[["account_id", "period_kind", "period_start", "index_name", "rank"]].rename(
        columns={"period_start": "prev_start", "rank": "prev_rank"}
    )
    values = values.merge(before, on=["account_id", "period_kind", "prev_start", "index_name"], how="left")
    values["rank_change"] = (values["prev_rank"] - values["rank"]).astype("Int64")
    t_compute = time.perf_counter()

    values[["account_id", "period_kind", "period_start", "index_name", "value", "rank", "rank_change"]].sort_values(
        ["period_kind", "period_start", "index_name", "account_id"]
    ).to_csv(out / "values.csv", index=False)
    grid[
        ["account_id", "period_kind", "period_start", "period_end", "first_day", "d", "n", "pushes", "headlines",
         "reads", "reads_headline", "reads_max", "wows", "wows_headline", "wows_max", "likes", "likes_headline",
         "likes_max", "shares", "shares_headline", "shares_max", "comments", "comments_headline", "comments_max",
         "engagement_rate", "read_rate", "reads_gained_per_day", "late_articles", "provisional", "missing_articles"]
    ].sort_values(["period_kind", "period_start", "account_id"]).to_csv(out / "periods.csv", index=False)
    t_write = time.perf_counter()
    print(
        f"pandas {pd.__version__}: {len(periods)} periods, {len(grid)} account rows, {len(values)} values; "
        f"load {t_load - t0:.3f} s, compute {t_compute - t_load:.3f} s, write {t_write - t_compute:.3f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
