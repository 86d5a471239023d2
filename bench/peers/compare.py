"""Runs the peers of `mpwatch index --full` (issue 12) and checks what they computed
against what mpwatch stored: index_values (value to 1e-9 relative, rank and rank_change
identical) and index_periods (every column but computed_at: counts exactly, sums,
maxima and rates to 1e-9 relative, NULLs alike). Standard library only.

    # compare outputs already written (each DIR holds values.csv and periods.csv)
    python3 bench/peers/compare.py mpwatch.db DIR [DIR ...]

    # time `mpwatch index --full` and the peers, then compare (nice -n 19 is inherited)
    nice -n 19 target/bench-venv/bin/python bench/peers/compare.py mpwatch.db \
        --run pandas,duckdb,sql --out /tmp/peers-out [--repeat 3] \
        [--mpwatch /path/to/mpwatch --config DIR/mpwatch.toml]

The peers are given `--now` = the `computed_at` mpwatch stored (its clock at the run),
so both open the same periods. With `--mpwatch`, mpwatch's index is recomputed first
(`index --full`, timed). Times are wall-clock seconds of the whole process (start-up,
imports, reading the database, computing, writing the output), best of --repeat, and
each peer's own breakdown from its stderr. Exit status 1 when anything disagrees.
"""

import argparse
import csv
import math
import pathlib
import sqlite3
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REL = 1e-9
PERIOD_INTS = ("period_end", "n", "pushes", "headlines", "comments", "comments_headline", "comments_max",
               "late_articles", "provisional", "missing_articles")
PERIOD_FLOATS = ("d", "reads", "reads_headline", "reads_max", "wows", "wows_headline", "wows_max", "likes",
                 "likes_headline", "likes_max", "shares", "shares_headline", "shares_max", "engagement_rate",
                 "read_rate", "reads_gained_per_day")
PERIOD_TEXT = ("first_day",)


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if a == b:
        return True
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= REL * max(abs(a), abs(b))


def num(text, kind):
    if text is None or text == "":
        return None
    return int(float(text)) if kind is int else float(text)


def mpwatch_tables(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    values = {
        (a, k, s, i): (v, r, c)
        for a, k, s, i, v, r, c in con.execute(
            "SELECT account_id, period_kind, period_start, index_name, value, rank, rank_change FROM index_values"
        )
    }
    cols = ("account_id", "period_kind", "period_start") + PERIOD_INTS + PERIOD_FLOATS + PERIOD_TEXT
    periods = {}
    for row in con.execute(f"SELECT {', '.join(cols)} FROM index_periods"):
        rec = dict(zip(cols, row))
        periods[(rec["account_id"], rec["period_kind"], rec["period_start"])] = rec
    now = con.execute("SELECT max(computed_at) FROM index_periods").fetchone()[0]
    con.close()
    return values, periods, now


def peer_tables(directory):
    directory = pathlib.Path(directory)
    values = {}
    with open(directory / "values.csv", newline="") as f:
        for row in csv.DictReader(f):
            key = (int(row["account_id"]), row["period_kind"], int(row["period_start"]), row["index_name"])
            values[key] = (num(row["value"], float), num(row["rank"], int), num(row["rank_change"], int))
    periods = {}
    with open(directory / "periods.csv", newline="") as f:
        for row in csv.DictReader(f):
            key = (int(row["account_id"]), row["period_kind"], int(row["period_start"]))
            rec = {c: num(row[c], int) for c in PERIOD_INTS}
            rec.update({c: num(row[c], float) for c in PERIOD_FLOATS})
            rec.update({c: row[c] for c in PERIOD_TEXT})
            periods[key] = rec
    return values, periods


def compare(name, mine, theirs, show=5):
    """Prints the disagreements of a peer; returns their count."""
    (m_values, m_periods), (p_values, p_periods) = mine, theirs
    problems = {}

    def note(what, detail):
        problems.setdefault(what, []).append(detail)

    for key in m_values.keys() - p_values.keys():
        note("index_values row missing in peer", key)
    for key in p_values.keys() - m_values.keys():
        note("index_values row only in peer", key)
    for key in m_values.keys() & p_values.keys():
        (mv, mr, mc), (pv, pr, pc) = m_values[key], p_values[key]
        if not close(mv, pv):
            note("value", (key, mv, pv))
        if mr != pr:
            note("rank", (key, mr, pr))
        if mc != pc:
            note("rank_change", (key, mc, pc))
    for key in m_periods.keys() - p_periods.keys():
        note("index_periods row missing in peer", key)
    for key in p_periods.keys() - m_periods.keys():
        note("index_periods row only in peer", key)
    for key in m_periods.keys() & p_periods.keys():
        m, p = m_periods[key], p_periods[key]
        for c in PERIOD_INTS + PERIOD_TEXT:
            if m[c] != p[c]:
                note(c, (key, m[c], p[c]))
        for c in PERIOD_FLOATS:
            if not close(m[c], p[c]):
                note(c, (key, m[c], p[c]))
    columns = len(PERIOD_INTS) + len(PERIOD_FLOATS) + len(PERIOD_TEXT)
    if not problems:
        print(f"{name}: agrees: {len(m_values)} index_values (value to {REL:g} relative, rank, rank_change), "
              f"{len(m_periods)} index_periods rows x {columns} columns")
        return 0
    total = sum(len(v) for v in problems.values())
    print(f"{name}: {total} disagreements ({len(m_values)} mpwatch values, {len(m_periods)} period rows)")
    for what, items in sorted(problems.items()):
        print(f"  {what}: {len(items)}; (key, mpwatch, peer):")
        for item in sorted(items, key=str)[:show]:
            print(f"    {item}")
    return total


def peer_command(peer, db, out, now, python):
    db = str(pathlib.Path(db).resolve())
    if peer == "pandas":
        return [python, str(HERE / "index_pandas.py"), db, str(out), "--now", str(now)], None
    if peer == "duckdb":
        return [python, str(HERE / "index_duckdb.py"), db, str(out), "--now", str(now)], None
    if peer == "sql":
        # The script writes values.csv and periods.csv into the working directory.
        return ["sqlite3", "-readonly", db, "-cmd", f".parameter set :now {now}"], HERE / "index_sql.sql"
    raise SystemExit(f"unknown peer {peer} (pandas, duckdb, sql)")


def timed(command, cwd=None, stdin_path=None):
    start = time.perf_counter()
    stdin = open(stdin_path, "rb") if stdin_path else None
    try:
        done = subprocess.run(command, cwd=cwd, stdin=stdin, capture_output=True, text=True)
    finally:
        if stdin:
            stdin.close()
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return elapsed, (done.stdout + done.stderr).strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db")
    ap.add_argument("dirs", nargs="*", help="peer output directories to compare")
    ap.add_argument("--run", help="peers to run: pandas,duckdb,sql")
    ap.add_argument("--out", default="peers-out", help="where --run writes (one directory per peer)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the Python peers")
    ap.add_argument("--mpwatch", help="mpwatch binary: run `index --full` first (timed)")
    ap.add_argument("--config", help="mpwatch.toml for --mpwatch")
    args = ap.parse_args()

    if args.mpwatch:
        command = [args.mpwatch] + (["--config", args.config] if args.config else []) + ["index", "--full"]
        best = min(timed(command)[0] for _ in range(args.repeat))
        print(f"mpwatch index --full: {best:.3f} s (best of {args.repeat})")
    values, periods, now = mpwatch_tables(args.db)
    if now is None:
        raise SystemExit("no index_periods in the database: run `mpwatch index --full` first")
    mine = (values, periods)
    dirs = [(pathlib.Path(d).name, d) for d in args.dirs]
    for peer in (args.run.split(",") if args.run else []):
        out = pathlib.Path(args.out).resolve() / peer
        out.mkdir(parents=True, exist_ok=True)
        command, stdin = peer_command(peer, args.db, out, now, args.python)
        runs = [timed(command, cwd=out, stdin_path=stdin) for _ in range(args.repeat)]
        best, log = min(runs, key=lambda r: r[0])
        print(f"{peer}: {best:.3f} s (best of {args.repeat}); {log.splitlines()[-1] if log else ''}")
        dirs.append((peer, out))
    failures = 0
    for name, directory in dirs:
        failures += compare(name, mine, peer_tables(directory)) > 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
