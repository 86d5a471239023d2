#!/usr/bin/env python3
"""Issue 12's benchmark harness: runs every benchmark of the issue against mpwatch's
release binaries and the peers in bench/peers/, checks that both sides produced the same
thing, and writes target/bench/results.md, target/bench/results.json and (on a full run)
the section of docs/benchmarks.md between the `bench/run.sh` markers.

Normally started by `bench/run.sh [--quick] [options]`, which builds the binaries and
creates the virtual environment of the peers first:

    python3 bench/harness.py --bin-dir target/release --python target/bench-venv/bin/python [--quick]

Standard library only (the peers run in the venv's interpreter, --python).

Benchmarks (--only NAME,NAME to run some of them):
  crawl      `mpwatch crawl` vs the Scrapy peer on one simulated world (CPU s, peak RSS,
             same rows or FAIL); CPU per article on a small world and a ~6x larger one;
             disk bytes written per crawl against the database size
  index      `index --full` on the synthetic year vs pandas, DuckDB (1 thread, default
             threads) and sqlite3 SQL (values compared: FAIL on any disagreement);
             incremental `index` after one more day (and checked against a full
             recompute), `index` with nothing new, `report --date D --top 10`
  articles   `articles --json` peak RSS at two database sizes
  ingest     snapshot rows/s through the store API (mpwatch-bench history)
  rate       achieved request rate against a configured 5/s, from the simulator's log
  scheduler  `mpwatch run` with 100,000 accounts on staggered schedules

Measurements, by /usr/bin/time around each measured process: CPU = user + sys (%U + %S),
peak RSS = %M (ru_maxrss), disk writes = %O x 512 (ru_oublock: bytes the process caused
to be written to the file system); wall = time.perf_counter around the process. Each measured command runs `--repeats` times
(5 by default, 1 with --quick) after one warm-up run (none with --quick); medians, min
and max are reported, and ratios are computed pair by pair (run i of mpwatch against
run i of the peer; the two commands alternate).

Exit status: 0 when every correctness check passed (targets may be missed: the tables
say so), 1 when a correctness check failed, 2 when the harness itself failed.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ beside bench/peers/rows_hash.py
ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
SCENARIO = PEERS / "sim-scenario.toml"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/run.sh:begin -->"
END = "<!-- bench/run.sh:end -->"
SIM_CPU, WORK_CPU = 0, 1  # the simulator on core 0, the measured process on core 1
BENCHMARKS = ("crawl", "index", "articles", "ingest", "rate", "scheduler")
HISTORY_START = 1_761_926_400  # mpwatch-bench's default: 2025-11-01 00:00 Beijing
HISTORY_UNTIL = 1_793_462_400  # its default end, a year later
DAY = 86_400

# Sizes. Sim worlds: (synthetic accounts besides the four publishing ones, days).
SIZES = {
    "full": {
        "crawl_world": (160, 60),  # 20,930 articles (seed 42)
        "linear_small": (22, 60),  # about 1/6 of it
        "history_accounts": 300, "history_days": 365,  # the synthetic year (mpwatch-bench defaults)
        "small_history_accounts": 30, "small_history_days": 60,
        "ingest_accounts": 50, "ingest_days": 365,
        "report_day": "2026-06-15",
        "rate_world": (20, 30), "rate_seconds": 60,
        "scheduler_accounts": 100_000, "scheduler_groups": 3600, "scheduler_seconds": 120,
    },
    "quick": {
        "crawl_world": (4, 10),  # 180 articles
        "linear_small": (4, 10),
        "linear_large": (40, 10),  # 1,019 articles
        "history_accounts": 30, "history_days": 60,
        "small_history_accounts": 10, "small_history_days": 30,
        "ingest_accounts": 30, "ingest_days": 60,
        "report_day": "2025-12-15",
        "rate_world": (8, 10), "rate_seconds": 10,
        "scheduler_accounts": 2_000, "scheduler_groups": 60, "scheduler_seconds": 20,
    },
}

# Targets of issue 12.
CRAWL_CPU_RATIO = 1 / 3
CRAWL_RSS_RATIO = 1 / 3
LINEAR_RATIO = 1.3
DISK_RATIO = 3.0
BEST_SQL_RATIO = 2.0
INCREMENTAL_S = 1.0
NOTHING_NEW_S = 0.2
REPORT_S = 0.3
FLAT_RSS_RATIO = 1.25  # the harness's reading of "memory flat in the number of rows"
INGEST_ROWS_S = 200_000
# The group size of the ingest benchmark when the crawl benchmark did not measure the
# crawler's (`--only ingest`): about what it measured on its comparison world (253
# writes per commit on average at a5970d6; 282 in a crawl of 44 accounts x 60 days).
INGEST_GROUP_DEFAULT = 256
# The crawler's log of its group commits (one debug line each, "group commit writes=N").
CRAWL_LOG_ENV = {"RUST_LOG": "warn,mpwatch_crawl::db=debug"}
GROUP_COMMIT_LINE = re.compile(r"group commit writes=(\d+)")
RATE_PER_S = 5.0
RATE_TOLERANCE = 0.02
SCHEDULER_RSS_MB = 300


# -- processes ------------------------------------------------------------------------------

STARTED: list[subprocess.Popen] = []


def kill_started() -> None:
    """Kills every process this harness started that is still running (by its pid)."""
    for proc in STARTED:
        if proc.returncode is None and proc.poll() is None:
            try:
                proc.kill()
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired, ChildProcessError):
                pass


def on_signal(signum, _frame):
    kill_started()
    sys.exit(128 + signum)


atexit.register(kill_started)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def clean_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPWATCH_") and k != "RUST_LOG"}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


class Harness:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.size = SIZES["quick" if args.quick else "full"]
        self.bin = Path(args.bin_dir).resolve()
        self.mpwatch = str(self.bin / "mpwatch")
        self.mpwatch_bench = str(self.bin / "mpwatch-bench")
        self.python = args.python
        self.out = Path(args.out).resolve()
        self.work = self.out / "work"
        self.logs = self.work / "logs"
        self.repeats = 1 if args.quick else args.repeats
        self.warmup = 0 if args.quick else 1
        self.failures: list[str] = []
        self.results: dict = {}
        self.counter = 0
        spec = importlib.util.spec_from_file_location("rows_hash", PEERS / "rows_hash.py")
        self.rows_hash_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.rows_hash_module)

    # -- running things ---------------------------------------------------------------------

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def spawn_timed(self, cmd, label, cpu=None, cwd=None, stdin_path=None, stdout_path=None, quiet_stdout=False,
                    env=None):
        """Starts a command under /usr/bin/time (which forks it from a small process, so that
        its ru_maxrss is its own and not this Python process's: a vfork-ed child's peak RSS
        counts the parent's at exec). Returns a Timed."""
        self.counter += 1
        name = f"{self.counter:03d}-{label}"
        out_path = Path(stdout_path) if stdout_path else self.logs / f"{name}.out"
        err_path = self.logs / f"{name}.err"
        time_path = self.logs / f"{name}.time"
        inner = [str(c) for c in cmd]
        if cpu is not None:
            inner = ["taskset", "-c", str(cpu)] + inner  # taskset execs: the same process
        full = ["/usr/bin/time", "-o", str(time_path), "-f", "%e %U %S %M %O %x"] + inner
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        stdout = subprocess.DEVNULL if quiet_stdout else open(out_path, "wb")
        stderr = open(err_path, "wb")
        began = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd or self.work, stdin=stdin, stdout=stdout, stderr=stderr,
                                env=clean_env(env))
        STARTED.append(proc)
        for f in (stdin, stdout, stderr):
            if f is not subprocess.DEVNULL:
                f.close()
        return Timed(proc, began, label, inner, out_path if not quiet_stdout else None, err_path, time_path)

    def measure(self, cmd, label, cpu=None, cwd=None, stdin_path=None, stdout_path=None, stop_after=None,
                stop_signal=signal.SIGINT, check=True, quiet_stdout=False, env=None) -> dict:
        """Runs one command to its end and returns its measurements."""
        timed = self.spawn_timed(cmd, label, cpu, cwd, stdin_path, stdout_path, quiet_stdout, env)
        timer = None
        if stop_after is not None:
            timer = threading.Timer(stop_after, lambda: timed.signal(stop_signal))
            timer.start()
        result = timed.wait()
        if timer:
            timer.cancel()
        if check and result["rc"] != 0:
            tail = Path(result["stderr"]).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{label} failed with {result['rc']}: {result['command']}\n{tail}")
        return result

    def start(self, cmd, label, cpu=None) -> tuple[subprocess.Popen, Path, Path]:
        """Starts a background process (stdout and stderr to files)."""
        self.counter += 1
        name = f"{self.counter:03d}-{label}"
        out_path, err_path = self.logs / f"{name}.out", self.logs / f"{name}.err"
        full = [str(c) for c in cmd]
        if cpu is not None:
            full = ["taskset", "-c", str(cpu)] + full
        proc = subprocess.Popen(full, cwd=self.work, stdin=subprocess.DEVNULL, stdout=open(out_path, "wb"),
                                stderr=open(err_path, "wb"), env=clean_env())
        STARTED.append(proc)
        return proc, out_path, err_path

    def fail(self, message: str) -> None:
        self.log(f"FAIL: {message}")
        self.failures.append(message)

    def rows_hash(self, db: Path, peer=False) -> tuple[int, str]:
        return self.rows_hash_module.rows_hash(str(db), "peer" if peer else "mpwatch")

    # -- the simulator ----------------------------------------------------------------------

    def sim(self, label, accounts, days, page_bytes=None) -> "Sim":
        return Sim(self, label, accounts, days, page_bytes)



class Timed:
    """A command running under /usr/bin/time."""

    def __init__(self, proc, began, label, inner, out_path, err_path, time_path):
        self.proc, self.began, self.label, self.inner = proc, began, label, inner
        self.out_path, self.err_path, self.time_path = out_path, err_path, time_path
        self.signalled_at = None

    def child(self) -> int | None:
        """The measured process (the child of /usr/bin/time)."""
        for _ in range(200):
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                return None
            if children:
                return int(children[0])
            time.sleep(0.01)
        return None

    def signal(self, sig) -> None:
        pid = self.child()
        if pid:
            self.signalled_at = time.time()
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def wait(self) -> dict:
        self.proc.wait()
        wall = time.perf_counter() - self.began
        lines = self.time_path.read_text().strip().splitlines()
        signalled = next((l for l in lines if l.startswith("Command terminated by signal")), None)
        e, user, system, rss_kb, out_blocks, status = lines[-1].split()
        rc = int(status)
        if signalled:
            rc = -int(signalled.split()[-1])
        return {
            "label": self.label, "command": " ".join(self.inner), "rc": rc, "wall_s": wall,
            "user_s": float(user), "sys_s": float(system), "cpu_s": float(user) + float(system),
            "max_rss_mb": int(rss_kb) / 1024, "write_bytes": int(out_blocks) * 512,
            "stdout": str(self.out_path) if self.out_path else None, "stderr": str(self.err_path),
            "signalled_at": self.signalled_at,
        }


def stop_process(proc: subprocess.Popen, sig=signal.SIGTERM, timeout=30) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def http_json(url, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


class Sim:
    """`mpwatch sim` on core 0 with --write-config; stopped by stop() (or at exit)."""

    def __init__(self, h: Harness, label, accounts, days, page_bytes=None):
        self.h = h
        self.dir = h.work / label
        shutil.rmtree(self.dir, ignore_errors=True)
        cmd = [h.mpwatch, "sim", "--listen", "127.0.0.1:0", "--accounts", accounts, "--days", days,
               "--scenario", SCENARIO, "--write-config", self.dir]
        if page_bytes:
            cmd += ["--page-bytes", page_bytes]
        self.proc, self.out, self.err = h.start(cmd, f"sim-{label}", cpu=SIM_CPU)
        deadline = time.monotonic() + 300
        text = ""
        while time.monotonic() < deadline:
            text = self.out.read_text(errors="replace")
            if "serving" in text:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited: {self.err.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        else:
            raise RuntimeError("simulator did not start within 300 s")
        self.base = re.search(r"^WeChat simulator at (\S+)", text, re.M).group(1)
        world = re.search(r"^world: seed (\d+), (\d+) accounts, (\d+) articles", text, re.M)
        self.world = {"seed": int(world.group(1)), "accounts": int(world.group(2)), "articles": int(world.group(3)),
                      "sim_args": {"accounts": accounts, "days": days, "page_bytes": page_bytes or 3_000_000}}
        self.config = self.dir / "mpwatch.toml"
        self.db = self.dir / "mpwatch.db"

    def freeze_clock(self) -> int:
        now = http_json(f"{self.base}/__sim/clock")["now"]
        http_json(f"{self.base}/__sim/clock", "PUT", {"mode": "fixed", "at": now})
        return now

    def log_since(self, since=0) -> tuple[list[dict], int]:
        requests = []
        while True:
            answer = http_json(f"{self.base}/__sim/requests?since={since}")
            batch = answer.get("requests", [])
            requests.extend(batch)
            if not batch or answer.get("next", since) == since:
                return requests, answer.get("next", since)
            since = answer["next"]

    def log_next(self) -> int:
        """The sequence number the next request will get (the log is not paginated)."""
        return self.log_since(0)[1]

    def write_config(self, name, limits: dict) -> Path:
        """A copy of the written config with [rate_limits.CLASS] keys replaced."""
        text = self.config.read_text()
        for cls, keys in limits.items():
            section = re.search(rf"^\[rate_limits\.{cls}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
            if not section:
                raise RuntimeError(f"no [rate_limits.{cls}] in {self.config}")
            body = section.group(1)
            for key, value in keys.items():
                body, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", body, flags=re.M)
                if n != 1:
                    raise RuntimeError(f"no {key} in [rate_limits.{cls}] of {self.config}")
            text = text[:section.start(1)] + body + text[section.end(1):]
        path = self.dir / name
        path.write_text(text)
        return path

    def disable_feeds(self, db=None) -> None:
        con = sqlite3.connect(db or self.db)
        with con:
            con.execute("UPDATE account_sources SET enabled = 0 WHERE kind = 'feed'")
        con.close()

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, 10)


LIFTED = {"interval": '"1us"', "burst": "100000"}


def lifted_limits():
    return {cls: dict(LIFTED) for cls in ("article_page", "list_api", "count_api", "feed")}


# -- statistics -----------------------------------------------------------------------------

def stats(values) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("**met**" if met else "**missed**")


def fmt(value, digits=3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.2f}"


def fstat(s, digits=3) -> tuple[str, str, str]:
    if not s:
        return "–", "–", "–"
    return fmt(s["median"], digits), fmt(s["min"], digits), fmt(s["max"], digits)


# -- benchmarks -----------------------------------------------------------------------------

def bench_crawl(h: Harness) -> dict:
    size = h.size
    result: dict = {}
    # The comparison world (also the "large" world of the linearity check in a full run).
    accounts, days = size["crawl_world"]
    pairs = h.repeats if h.args.crawl_pairs is None or h.quick else h.args.crawl_pairs
    peer_warmup = h.warmup and not h.args.no_peer_warmup
    sim = h.sim("crawl-world", accounts, days)
    try:
        frozen = sim.freeze_clock()
        sim.disable_feeds()
        config = sim.write_config("mpwatch-bench.toml", lifted_limits())
        h.log(f"crawl world: {sim.world['accounts']} accounts, {sim.world['articles']} articles; "
              f"{pairs} pair(s), warm-up mpwatch {h.warmup}, Scrapy {int(bool(peer_warmup))}")
        runs = {"mpwatch": [], "scrapy": []}
        hashes = set()
        next_seq = sim.log_next()
        plan = [("mpwatch", True)] * h.warmup + [("scrapy", True)] * int(bool(peer_warmup))
        for _ in range(pairs):
            plan += [("mpwatch", False), ("scrapy", False)]
        for i, (side, warm) in enumerate(plan):
            db = h.work / "crawl-runs" / f"{i:02d}-{side}.db"
            db.parent.mkdir(exist_ok=True)
            if side == "mpwatch":
                shutil.copy(sim.db, db)
                cmd = [h.mpwatch, "--config", config, "--db", db, "crawl"]
            else:
                cmd = [h.python, PEERS / "scrapy_crawl.py", "--config", config, "--out", db]
            run = h.measure(cmd, f"crawl-{side}", cpu=WORK_CPU, check=False,
                            env=CRAWL_LOG_ENV if side == "mpwatch" else None)
            if side == "mpwatch":
                run["group_writes"] = group_commits(Path(run["stderr"]))
            requests, next_seq = sim.log_since(next_seq)
            run["requests"] = len(requests)
            run["requests_not_200"] = sum(1 for r in requests if r["status"] != 200)
            if run["rc"] != 0:
                h.fail(f"{side} crawl exited {run['rc']} (see {run['stderr']})")
            count, digest = h.rows_hash(db, peer=(side == "scrapy"))
            run.update(rows=count, rows_hash=digest, warmup=warm)
            hashes.add((count, digest))
            if side == "mpwatch":
                run["db_bytes"] = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
                run["disk_ratio"] = run["write_bytes"] / run["db_bytes"]
            runs[side].append(run)
            h.log(f"  {side}{' (warm-up)' if warm else ''}: {run['cpu_s']:.2f} CPU s, {run['max_rss_mb']:.0f} MB, "
                  f"{run['wall_s']:.1f} s wall, {run['requests']} requests, {count} rows {digest[:12]}")
            if side == "mpwatch":
                db.unlink(missing_ok=True)  # keep the disk small; the hash is taken
        if len(hashes) != 1:
            h.fail(f"crawl: the stored rows differ between runs or sides: {sorted(hashes)}")
        mp = [r for r in runs["mpwatch"] if not r["warmup"]]
        peer = [r for r in runs["scrapy"] if not r["warmup"]]
        cpu_ratios = [a["cpu_s"] / b["cpu_s"] for a, b in zip(mp, peer)]
        rss_ratios = [a["max_rss_mb"] / b["max_rss_mb"] for a, b in zip(mp, peer)]
        articles = mp[0]["rows"] if mp else None
        result["compare"] = {
            "world": sim.world, "clock_frozen_at": frozen, "pairs": pairs, "peer_warmup": bool(peer_warmup),
            "runs": runs, "rows": sorted(hashes),
            "rows_equal": len(hashes) == 1,
            "mpwatch_cpu": stats(r["cpu_s"] for r in mp), "scrapy_cpu": stats(r["cpu_s"] for r in peer),
            "mpwatch_rss": stats(r["max_rss_mb"] for r in mp), "scrapy_rss": stats(r["max_rss_mb"] for r in peer),
            "mpwatch_wall": stats(r["wall_s"] for r in mp), "scrapy_wall": stats(r["wall_s"] for r in peer),
            "cpu_ratio": stats(cpu_ratios), "rss_ratio": stats(rss_ratios),
            "requests": sorted({r["requests"] for r in mp + peer}),
            "mpwatch_cpu_per_article_ms": stats(r["cpu_s"] / r["rows"] * 1000 for r in mp),
            "group_commits": group_commit_stats(mp),
            "scrapy_cpu_per_article_ms": stats(r["cpu_s"] / r["rows"] * 1000 for r in peer),
        }
        result["disk"] = {
            "write_bytes": stats(r["write_bytes"] for r in mp), "db_bytes": stats(r["db_bytes"] for r in mp),
            "ratio": stats(r["disk_ratio"] for r in mp), "articles": articles,
        }
        large_runs = mp
        large_world = sim.world
    finally:
        sim.stop()

    # Linearity: CPU per article on a small world against the large one.
    def mpwatch_runs(label, accounts, days, repeats):
        sim = h.sim(label, accounts, days)
        try:
            sim.freeze_clock()
            sim.disable_feeds()
            config = sim.write_config("mpwatch-bench.toml", lifted_limits())
            out = []
            for i in range(h.warmup + repeats):
                db = h.work / "crawl-runs" / f"{label}-{i:02d}.db"
                shutil.copy(sim.db, db)
                run = h.measure([h.mpwatch, "--config", config, "--db", db, "crawl"], f"crawl-{label}", cpu=WORK_CPU)
                run["rows"], run["rows_hash"] = h.rows_hash(db)
                run["warmup"] = i < h.warmup
                run["db_bytes"] = db.stat().st_size
                db.unlink()
                out.append(run)
                h.log(f"  {label}{' (warm-up)' if run['warmup'] else ''}: {run['cpu_s']:.2f} CPU s for "
                      f"{run['rows']} articles ({run['cpu_s'] / run['rows'] * 1000:.2f} ms each)")
            if len({r["rows_hash"] for r in out}) != 1:
                h.fail(f"crawl {label}: runs stored different rows")
            return sim.world, [r for r in out if not r["warmup"]], out
        finally:
            sim.stop()

    small_world, small, small_all = mpwatch_runs("linear-small", *size["linear_small"], h.repeats)
    if "linear_large" in size:
        large_world, large_runs, large_all = mpwatch_runs("linear-large", *size["linear_large"], h.repeats)
    else:
        large_all = large_runs
    small_per = stats(r["cpu_s"] / r["rows"] * 1000 for r in small)
    large_per = stats(r["cpu_s"] / r["rows"] * 1000 for r in large_runs)
    result["linear"] = {
        "small_world": small_world, "large_world": large_world,
        "small_articles": small[0]["rows"], "large_articles": large_runs[0]["rows"],
        "small_runs": small_all, "large_runs": large_all,
        "small_ms_per_article": small_per, "large_ms_per_article": large_per,
        "ratio": large_per["median"] / small_per["median"],
        "small_disk_ratio": stats(r["write_bytes"] / r["db_bytes"] for r in small),
    }
    return result


def group_commits(stderr: Path) -> list[int]:
    """The writes of each group commit a crawl logged."""
    return [int(m.group(1)) for m in GROUP_COMMIT_LINE.finditer(stderr.read_text(errors="replace"))]


def group_commit_stats(runs) -> dict | None:
    """Writes per group commit over the runs' commits (mean, max), and commits per run."""
    sizes = [n for r in runs for n in r.get("group_writes", [])]
    if not sizes:
        return None
    return {"writes_mean": sum(sizes) / len(sizes), "writes_max": max(sizes), "writes": sum(sizes),
            "commits_per_run": stats(len(r.get("group_writes", [])) for r in runs)}


def history(h: Harness, db: Path, accounts, days, label, until=None, check=True, cpu=None,
            batch=None, group_commit=False) -> dict:
    until = until or HISTORY_START + days * DAY
    extra = (["--batch", batch] if batch else []) + (["--group-commit"] if group_commit else [])
    run = h.measure([h.mpwatch_bench, "history", "--db", db, "--accounts", accounts, "--start", HISTORY_START,
                     "--until", until, *extra], label, cpu=cpu, check=check)
    run["summary"] = json.loads(Path(run["stdout"]).read_text().strip().splitlines()[-1])
    return run


def index_tables(db: Path):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    values = {tuple(r[:4]): r[4:] for r in con.execute(
        "SELECT account_id, period_kind, period_start, index_name, value, rank, rank_change FROM index_values")}
    cols = [r[1] for r in con.execute("PRAGMA table_info(index_periods)") if r[1] != "computed_at"]
    periods = {}
    for row in con.execute(f"SELECT {', '.join(cols)} FROM index_periods"):
        rec = dict(zip(cols, row))
        periods[(rec["account_id"], rec["period_kind"], rec["period_start"])] = rec
    con.close()
    return values, periods


def same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(abs(a), abs(b)))
    return a == b


def diff_index(a: Path, b: Path) -> list[str]:
    """Differences between the index tables of two mpwatch databases (computed_at aside)."""
    (va, pa), (vb, pb) = index_tables(a), index_tables(b)
    problems = []
    for key in va.keys() ^ vb.keys():
        problems.append(f"index_values row only in {'incremental' if key in va else 'full'}: {key}")
    for key in va.keys() & vb.keys():
        if not all(same(x, y) for x, y in zip(va[key], vb[key])):
            problems.append(f"index_values {key}: incremental {va[key]} full {vb[key]}")
    for key in pa.keys() ^ pb.keys():
        problems.append(f"index_periods row only in {'incremental' if key in pa else 'full'}: {key}")
    for key in pa.keys() & pb.keys():
        for column in pa[key]:
            if not same(pa[key][column], pb[key][column]):
                problems.append(f"index_periods {key} {column}: incremental {pa[key][column]} full {pb[key][column]}")
    return problems


def bench_index(h: Harness) -> dict:
    size = h.size
    work = h.work / "index"
    work.mkdir(exist_ok=True)
    year = work / "year.db"
    accounts, days = size["history_accounts"], size["history_days"]
    until = HISTORY_START + days * DAY
    h.log(f"synthetic history: {accounts} accounts, {days} days")
    generated = history(h, year, accounts, days, "history-year", until=until, cpu=WORK_CPU)
    h.log(f"  {generated['summary']}")
    h.results.setdefault("_history", generated)
    con = sqlite3.connect(year)
    n_articles, n_snapshots = (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                               for t in ("articles", "metric_snapshots"))
    con.close()
    peers = {
        "pandas": lambda db, out, now: ([h.python, PEERS / "index_pandas.py", db, out, "--now", now], None),
        "duckdb-1-thread": lambda db, out, now: (
            [h.python, PEERS / "index_duckdb.py", db, out, "--now", now, "--threads", 1], None),
        "duckdb": lambda db, out, now: ([h.python, PEERS / "index_duckdb.py", db, out, "--now", now], None),
        "sqlite3-sql": lambda db, out, now: (
            ["sqlite3", "-readonly", db, "-cmd", f".parameter set :now {now}"], PEERS / "index_sql.sql"),
    }
    indexed = work / "indexed.db"
    timed_out: dict[str, float] = {}
    runs = {"mpwatch": [], **{p: [] for p in peers}}
    now = None
    full_repeats = h.args.index_repeats or h.repeats if not h.quick else 1
    full_warmup = 0 if h.args.no_index_warmup else h.warmup
    for i in range(full_warmup + full_repeats):
        warm = i < full_warmup
        copy = work / "full.db"
        shutil.copy(year, copy)
        run = h.measure([h.mpwatch, "--db", copy, "index", "--full"], "index-full")
        run["warmup"] = warm
        run["output"] = Path(run["stdout"]).read_text().strip()
        runs["mpwatch"].append(run)
        if now is None:
            shutil.move(copy, indexed)
            con = sqlite3.connect(indexed)
            now = con.execute("SELECT max(computed_at) FROM index_periods").fetchone()[0]
            con.close()
        line = [f"mpwatch {run['wall_s']:.2f} s"]
        for name, command in peers.items():
            out = work / "peers" / name
            out.mkdir(parents=True, exist_ok=True)
            if timed_out.get(name):
                continue  # it did not finish before: not run again
            cmd, stdin = command(indexed, out, now)
            prun = h.measure(cmd, f"index-{name}", cwd=out, stdin_path=stdin, check=False,
                             stop_after=h.args.peer_timeout, stop_signal=signal.SIGKILL)
            prun["warmup"] = warm
            prun["log"] = Path(prun["stderr"]).read_text(errors="replace").strip()[-500:]
            if prun["rc"] != 0 and prun["signalled_at"]:
                prun["timed_out"] = True
                timed_out[name] = h.args.peer_timeout
                line.append(f"{name} stopped after {h.args.peer_timeout:g} s")
                runs[name].append(prun)
                continue
            if prun["rc"] != 0:
                raise RuntimeError(f"index peer {name} failed ({prun['rc']}): {prun['log']}")
            runs[name].append(prun)
            line.append(f"{name} {prun['wall_s']:.2f} s")
        h.log(f"  index --full{' (warm-up)' if warm else ''}: " + ", ".join(line))
    (work / "full.db").unlink(missing_ok=True)
    # Values: every peer against mpwatch's tables.
    compare = h.measure([sys.executable, PEERS / "compare.py", indexed]
                        + [work / "peers" / p for p in peers if p not in timed_out], "index-compare", check=False)
    compare_text = Path(compare["stdout"]).read_text() + Path(compare["stderr"]).read_text()
    h.log("  compare.py: " + " | ".join(compare_text.strip().splitlines()[:len(peers)]))
    if compare["rc"] != 0:
        h.fail(f"index: the peers' values disagree with mpwatch's (compare.py exit {compare['rc']}):\n{compare_text}")

    measured = {k: [r for r in v if not r["warmup"] and not r.get("timed_out")] for k, v in runs.items()}
    mp = measured["mpwatch"]
    table = {"mpwatch": {"wall": stats(r["wall_s"] for r in mp), "cpu": stats(r["cpu_s"] for r in mp),
                         "rss": stats(r["max_rss_mb"] for r in mp)}}
    for name in peers:
        pr = measured[name]
        table[name] = {"wall": stats(r["wall_s"] for r in pr), "cpu": stats(r["cpu_s"] for r in pr),
                       "rss": stats(r["max_rss_mb"] for r in pr),
                       "ratio": stats(a["wall_s"] / b["wall_s"] for a, b in zip(mp, pr))}
    for name in timed_out:
        table[name]["timed_out"] = timed_out[name]
    sql_peers = [p for p in ("duckdb", "duckdb-1-thread", "sqlite3-sql") if table[p]["wall"]]
    best_sql = min(sql_peers, key=lambda p: table[p]["wall"]["median"]) if sql_peers else None

    # Incremental: one more day on a copy that had index --full.
    new_until = until + DAY
    incremental, added, nothing_new, report = [], [], [], []
    inc = work / "incremental.db"
    for i in range(h.warmup + h.repeats):
        shutil.copy(indexed, inc)
        add = history(h, inc, accounts, days, "history-add-day", until=new_until)
        added.append(add)
        run = h.measure([h.mpwatch, "--db", inc, "index"], "index-incremental")
        run["warmup"] = i < h.warmup
        run["output"] = Path(run["stdout"]).read_text().strip()
        incremental.append(run)
    h.log(f"  one more day: {added[-1]['summary']}; incremental index: "
          + ", ".join(f"{r['wall_s']:.3f} s" for r in incremental) + f" ({incremental[-1]['output']})")
    for i in range(h.warmup + h.repeats):
        run = h.measure([h.mpwatch, "--db", inc, "index"], "index-nothing-new")
        run["warmup"] = i < h.warmup
        run["output"] = Path(run["stdout"]).read_text().strip()
        nothing_new.append(run)
    for i in range(h.warmup + h.repeats):
        run = h.measure([h.mpwatch, "--db", inc, "report", "--date", size["report_day"], "--top", "10"],
                        "report")
        run["warmup"] = i < h.warmup
        report.append(run)
    report_text = Path(report[-1]["stdout"]).read_text()
    h.log("  nothing new: " + ", ".join(f"{r['wall_s']:.3f} s" for r in nothing_new)
          + "; report: " + ", ".join(f"{r['wall_s']:.3f} s" for r in report))
    # The incremental result must be what a full recompute gives.
    check = work / "check-full.db"
    shutil.copy(inc, check)
    h.measure([h.mpwatch, "--db", check, "index", "--full"], "index-full-check")
    problems = diff_index(inc, check)
    if problems:
        h.fail(f"index: incremental `index` after one more day differs from `index --full` in {len(problems)} "
               f"places, e.g.:\n  " + "\n  ".join(problems[:10]))
    else:
        h.log("  incremental index == full recompute (index_values, index_periods)")
    for path in (check, inc, work / "full.db"):
        path.unlink(missing_ok=True)
    return {
        "full_repeats": full_repeats, "full_warmup": full_warmup, "timed_out": timed_out,
        "history": {"accounts": accounts, "days": days, "articles": n_articles, "snapshots": n_snapshots,
                    "generation": generated},
        "now": now, "runs": runs, "table": table, "best_sql": best_sql,
        "compare_rc": compare["rc"], "compare_output": compare_text,
        "incremental": {"runs": incremental, "added": [a["summary"] for a in added],
                        "wall": stats(r["wall_s"] for r in incremental if not r["warmup"]),
                        "cpu": stats(r["cpu_s"] for r in incremental if not r["warmup"]),
                        "rss": stats(r["max_rss_mb"] for r in incremental if not r["warmup"]),
                        "equals_full": not problems, "differences": problems[:50],
                        "n_differences": len(problems)},
        "nothing_new": {"runs": nothing_new, "wall": stats(r["wall_s"] for r in nothing_new if not r["warmup"])},
        "report": {"runs": report, "date": size["report_day"], "output": report_text,
                   "wall": stats(r["wall_s"] for r in report if not r["warmup"]),
                   "rss": stats(r["max_rss_mb"] for r in report if not r["warmup"])},
        "year_db": str(year),
    }


def year_db(h: Harness) -> Path:
    """The synthetic history (generated by the index benchmark, or here)."""
    year = h.work / "index" / "year.db"
    if not year.exists():
        year.parent.mkdir(exist_ok=True)
        size = h.size
        generated = history(h, year, size["history_accounts"], size["history_days"], "history-year", cpu=WORK_CPU)
        h.results.setdefault("_history", generated)
    return year


def bench_articles(h: Harness) -> dict:
    size = h.size
    small = h.work / "articles-small.db"
    small.unlink(missing_ok=True)
    history(h, small, size["small_history_accounts"], size["small_history_days"], "history-small")
    large = year_db(h)
    out = {}
    for name, db in (("small", small), ("large", large)):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        rows = con.execute("SELECT count(*) FROM articles").fetchone()[0]
        con.close()
        runs = []
        for i in range(h.warmup + h.repeats):
            run = h.measure([h.mpwatch, "--db", db, "articles", "--json"], f"articles-json-{name}", quiet_stdout=True)
            run["warmup"] = i < h.warmup
            runs.append(run)
        measured = [r for r in runs if not r["warmup"]]
        out[name] = {"db": str(db), "rows": rows, "runs": runs, "rss": stats(r["max_rss_mb"] for r in measured),
                     "wall": stats(r["wall_s"] for r in measured)}
        h.log(f"articles --json {name} ({rows} articles): " + ", ".join(
            f"{r['max_rss_mb']:.1f} MB {r['wall_s']:.2f} s" for r in runs))
    out["rows_ratio"] = out["large"]["rows"] / out["small"]["rows"]
    out["rss_ratio"] = out["large"]["rss"]["median"] / out["small"]["rss"]["median"]
    small.unlink(missing_ok=True)
    return out


def bench_ingest(h: Harness) -> dict:
    """Snapshot rows through the store API, as the crawler writes them: each snapshot one
    member of a group commit (`Store::write_group`), in groups of the size the crawl
    benchmark's mpwatch runs committed (mean writes per group), and for reference in plain
    transactions of 64 rows."""
    size = h.size
    crawled = ((h.results.get("crawl") or {}).get("compare") or {}).get("group_commits")
    group = max(1, round(crawled["writes_mean"])) if crawled else INGEST_GROUP_DEFAULT
    ways = {"group": {"batch": group, "group_commit": True}, "plain64": {"batch": 64, "group_commit": False}}
    runs = {way: [] for way in ways}
    for i in range(h.warmup + h.repeats):
        for way, how in ways.items():  # alternated, so that drift hits both alike
            db = h.work / "ingest.db"
            for p in h.work.glob("ingest.db*"):
                p.unlink()
            run = history(h, db, size["ingest_accounts"], size["ingest_days"], f"history-ingest-{way}",
                          cpu=WORK_CPU, **how)
            run["warmup"] = i < h.warmup
            runs[way].append(run)
            h.log(f"ingest {way}{' (warm-up)' if run['warmup'] else ''}: {run['summary']}")
    for p in h.work.glob("ingest.db*"):
        p.unlink()
    measured = {way: [r for r in rs if not r["warmup"]] for way, rs in runs.items()}
    out = {"accounts": size["ingest_accounts"], "days": size["ingest_days"], "runs": runs,
           "group": group, "group_from_crawl": crawled,
           "rows_per_s": stats(r["summary"]["snapshot_rows_per_second"] for r in measured["group"]),
           "plain64_rows_per_s": stats(r["summary"]["snapshot_rows_per_second"] for r in measured["plain64"]),
           "snapshots": measured["group"][0]["summary"]["snapshots"],
           "write_bytes": stats(r["write_bytes"] for r in measured["group"])}
    year = h.results.get("_history")
    if year:
        out["year"] = {"summary": year["summary"], "wall_s": year["wall_s"], "cpu_s": year["cpu_s"],
                       "max_rss_mb": year["max_rss_mb"], "write_bytes": year["write_bytes"],
                       "db_bytes": (h.work / "index" / "year.db").stat().st_size}
    return out


def bench_rate(h: Harness) -> dict:
    size = h.size
    seconds = h.args.rate_seconds or size["rate_seconds"]
    runs_wanted = 1 if h.quick else (h.args.rate_runs or h.repeats)
    sim = h.sim("rate-world", *size["rate_world"])
    try:
        sim.disable_feeds()
        interval_ms = 1000 / RATE_PER_S
        config = sim.write_config("mpwatch-rate.toml", {
            "article_page": {"interval": f'"{interval_ms:.0f}ms"', "burst": "1", "jitter": '"0s"'}})
        runs = []
        for i in range(runs_wanted):
            db = h.work / "rate.db"
            shutil.copy(sim.db, db)
            since = sim.log_next()
            # Stopped (SIGINT) a little after the window: the crawl pages its lists first.
            run = h.measure([h.mpwatch, "--config", config, "--db", db, "crawl", "--no-metrics"], "rate-crawl",
                            cpu=WORK_CPU, stop_after=seconds + (1 if h.quick else 3), check=False)
            requests, _ = sim.log_since(since)
            all_pages = sorted(r["at_ms"] for r in requests if r["path"] == "/s")
            window_end = all_pages[0] + seconds * 1000 if all_pages else 0
            pages = [t for t in all_pages if t <= window_end]
            stop_ms = (run["signalled_at"] or 0) * 1000
            gaps = [b - a for a, b in zip(pages, pages[1:])]
            span = (pages[-1] - pages[0]) / 1000 if len(pages) > 1 else None
            rate = (len(pages) - 1) / span if span else None
            run.update({
                "pages": len(pages), "pages_in_all": len(all_pages), "requests": len(requests),
                "pages_after_stop_signal": sum(1 for t in all_pages if t > stop_ms) if stop_ms else None,
                "last_page_after_stop_s": (all_pages[-1] - stop_ms) / 1000 if stop_ms and all_pages else None,
                "span_s": span, "rate": rate,
                "error": rate / RATE_PER_S - 1 if rate else None,
                "gap_ms": stats(gaps), "non_200": sum(1 for r in requests if r["status"] != 200),
                "paths": sorted({r["path"] for r in requests}),
            })
            run["gap_ms"] and run["gap_ms"].pop("values")
            if run["rc"] not in (0, 130):
                h.fail(f"rate: mpwatch crawl exited {run['rc']} (see {run['stderr']})")
            if len(pages) < 2:
                h.fail("rate: fewer than 2 article page requests in the simulator's log")
            runs.append(run)
            h.log(f"rate: {len(pages)} article pages in {span:.2f} s = {rate:.4f}/s "
                  f"({(rate / RATE_PER_S - 1) * 100:+.2f} %); {len(requests)} requests in all")
            db.unlink()
    finally:
        sim.stop()
    return {"configured": RATE_PER_S, "interval": f"{1000 / RATE_PER_S:.0f}ms", "seconds": seconds,
            "world": sim.world, "runs": runs, "rate": stats(r["rate"] for r in runs),
            "error": stats(abs(r["error"]) for r in runs if r["error"] is not None)}


def bench_scheduler(h: Harness) -> dict:
    size = h.size
    accounts = h.args.scheduler_accounts or size["scheduler_accounts"]
    groups = size["scheduler_groups"] if not h.args.scheduler_accounts else min(3600, max(60, accounts // 28))
    if groups > 60:
        groups = 3600  # one group per second of the hour
    period = 60 if groups <= 60 else 3600
    seconds = h.args.scheduler_seconds or size["scheduler_seconds"]
    h.log(f"scheduler: {accounts} accounts in {groups} groups, each group discovered once every {period} s "
          f"(staggered: one group per second), metrics every minute; {seconds} s")
    # The world has the four publishing accounts besides these; --write-config adds them all.
    sim = h.sim("scheduler-world", accounts, 2, page_bytes=20_000)
    try:
        db = h.work / "scheduler.db"
        shutil.copy(sim.db, db)
        con = sqlite3.connect(db)
        with con:
            con.execute("INSERT INTO account_groups (account_id, name) "
                        "SELECT id, printf('stagger-%04d', (id - 1) % ?) FROM accounts", (groups,))
        n_accounts = con.execute("SELECT count(*) FROM accounts WHERE enabled = 1").fetchone()[0]
        con.close()
        text = sim.config.read_text()
        text += '\n[[schedule]]\nname = "metrics"\ncron = "0 * * * * *"\njob = "metrics"\n'
        for k in range(groups):
            cron = f"{k} * * * * *" if period == 60 else f"{k % 60} {k // 60} * * * *"
            text += (f'\n[[schedule]]\nname = "stagger-{k:04d}"\ncron = "{cron}"\njob = "discover"\n'
                     f'group = "stagger-{k:04d}"\ncatch_up = "none"\n')
        config = sim.dir / "mpwatch-scheduler.toml"
        config.write_text(text)
        since = sim.log_next()
        timed = h.spawn_timed([h.mpwatch, "--config", config, "--db", db, "run"], "scheduler-run", cpu=WORK_CPU)
        proc, err = timed.proc, timed.err_path
        started = time.monotonic()
        deadline = started + 300
        while "service started" not in err.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mpwatch run did not start: {err.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        t_ready = time.time()
        startup_s = time.monotonic() - started
        samples = []
        child = timed.child()
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            try:
                status = Path(f"/proc/{child}/status").read_text()
            except OSError:
                break
            rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
            samples.append((round(time.time() - t_ready, 2), round(rss, 1)))
            time.sleep(1)
        t_stop = time.time()
        stop_began = time.monotonic()
        timed.signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            timed.signal(signal.SIGKILL)
        service = timed.wait()
        stop_s = time.monotonic() - stop_began
        requests, _ = sim.log_since(since)
    finally:
        sim.stop()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    jobs = {r[0]: r[1:] for r in con.execute(
        "SELECT name, last_fire_at, last_started_at, last_finished_at, last_result, last_message FROM service_jobs")}
    runs_by_state = dict(con.execute("SELECT result, count(*) FROM crawl_runs GROUP BY 1").fetchall())
    n_runs = con.execute("SELECT count(*) FROM crawl_runs").fetchone()[0]
    n_articles = con.execute("SELECT count(*) FROM articles").fetchone()[0]
    con.close()
    # Every fire of a group entry that fell between the service being ready and its stop.
    expected = [t for t in range(math.ceil(t_ready) + 1, math.floor(t_stop)) if t % period < groups]
    handled, late, missed, finished = 0, [], [], 0
    for t in expected:
        name = f"stagger-{t % period:04d}"
        row = jobs.get(name)
        if row and row[0] == t and row[1] is not None and row[1] >= t and "skip" not in (row[4] or ""):
            handled += 1
            late.append(row[1] - t)
            finished += row[2] is not None and row[3] in ("ok", "partial")
        else:
            missed.append((name, t, row))
    peak = service["max_rss_mb"]
    peak_sampled = max((s[1] for s in samples), default=None)
    return {
        "accounts": n_accounts, "groups": groups, "period_s": period, "seconds": seconds,
        "startup_s": startup_s, "stop_s": stop_s, "rc": service["rc"], "service": service,
        "cpu_s": service["cpu_s"], "max_rss_mb": peak, "peak_rss_sampled_mb": peak_sampled,
        "rss_samples": samples, "fires_expected": len(expected), "fires_started": handled,
        "fires_missed": len(missed), "missed_examples": [str(m) for m in missed[:10]],
        "start_lateness_s": stats(late), "group_runs_finished": finished, "crawl_runs": n_runs,
        "crawl_runs_by_state": runs_by_state, "articles_stored": n_articles, "sim_requests": len(requests),
        "world": sim.world, "log": str(err),
        "waiting_for_database_warnings": err.read_text(errors="replace").count("waiting for the database"),
    }


# -- output ---------------------------------------------------------------------------------

def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"cpu": model.group(1).strip() if model else platform.processor(), "nproc": int(nproc or 0),
            "mem_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
            "kernel": platform.release(), "python": platform.python_version()}


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def ratio_cells(s) -> str:
    return "–" if not s else f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def mmm(s, digits=3) -> str:
    if not s:
        return "– | – | –"
    return " | ".join(fstat(s, digits))


def render(h: Harness, meta: dict) -> str:
    r = h.results
    L = []
    mode = "quick (`--quick`: small sizes, 1 run, correctness only; figures are not the benchmark)" if h.quick \
        else f"full: median of {h.repeats} after {h.warmup} warm-up, unless a table says otherwise"
    L += ["## Issue 12 benchmarks (`bench/run.sh`)", "",
          f"Written by `bench/run.sh{' --quick' if h.quick else ''}` on {meta['date']}, commit `{meta['commit']}`"
          f"{' (plus uncommitted changes)' if meta['dirty'] else ''}; binaries from `{meta['bin_dir']}` "
          f"({meta['version']}).",
          f"Machine: {meta['machine']['cpu']} ({meta['machine']['nproc']} cores by `nproc`, "
          f"{meta['machine']['mem_gib']} GiB), Linux {meta['machine']['kernel']}, Python {meta['machine']['python']}; "
          f"load average {meta['load_before']} at the start and {meta['load_after']} at the end. "
          "The machine is shared: other jobs (builds, other sessions' processes) ran beside these measurements, "
          "so wall times especially are noisy; CPU seconds less so. No `nice`.",
          f"Mode: {mode}. Totals: {meta['duration_s']:.0f} s.",
          "Every measured process runs under `/usr/bin/time`: CPU = user + sys (`%U` + `%S`), peak RSS = `%M`, "
          "disk writes = `%O` x 512 (bytes it caused to be written to the file system). Ratios are computed pair by pair (run i against run i; "
          "the commands alternate) and summarised as median (min–max).", ""]
    for name, res in r.items():
        if isinstance(res, dict) and res.get("reused_from"):
            m = res["reused_from"]
            L += [f"({name}: measured by an earlier run of this harness on {m['date']}, commit `{m['commit']}`, "
                  f"load average {m['load_before']} → {m['load_after']}, options `{' '.join(m['argv'] or [])}`.)", ""]
    if h.failures:
        L += ["**Correctness failures:**", ""] + [f"- {f.splitlines()[0]}" for f in h.failures] + [""]

    c = r.get("crawl")
    if c:
        cc = c["compare"]
        w = cc["world"]
        L += ["### 1. Crawl: `mpwatch crawl` vs the Scrapy peer", "",
              f"World: `mpwatch sim --accounts {w['sim_args']['accounts']} --days {w['sim_args']['days']}` "
              f"(seed {w['seed']}, {w['accounts']} accounts, {w['articles']} articles, 3 MB pages), clock frozen, "
              "`bench/peers/sim-scenario.toml`, mpwatch's limits lifted (interval 1us, burst 100000), feed sources "
              "off, 8 requests in flight on both sides; simulator on core 0, crawler on core 1. "
              f"{cc['pairs']} pair(s) (mpwatch, then Scrapy)"
              + ("" if h.quick else f", after a warm-up of mpwatch"
                 f"{' and of Scrapy' if cc['peer_warmup'] else ' only (no Scrapy warm-up: it costs ~40 ms of CPU per article)'}")
              + ". "
              f"Requests per run: {', '.join(map(str, cc['requests']))}.", "",
              "| | CPU s median | min | max | peak RSS MB median | min | max | wall s median | CPU ms / article |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
              f"| `mpwatch crawl` | {mmm(cc['mpwatch_cpu'])} | {mmm(cc['mpwatch_rss'])} | "
              f"{fmt(cc['mpwatch_wall']['median'])} | {fmt(cc['mpwatch_cpu_per_article_ms']['median'])} |",
              f"| Scrapy peer | {mmm(cc['scrapy_cpu'])} | {mmm(cc['scrapy_rss'])} | "
              f"{fmt(cc['scrapy_wall']['median'])} | {fmt(cc['scrapy_cpu_per_article_ms']['median'])} |",
              f"| ratio mpwatch / Scrapy (pairwise) | {mmm(cc['cpu_ratio'])} | {mmm(cc['rss_ratio'])} | | |", "",
              "| target | measured | |", "|---|---|---|",
              f"| CPU ≤ 1/3 of Scrapy's | {ratio_cells(cc['cpu_ratio'])} | "
              f"{verdict(cc['cpu_ratio']['median'] <= CRAWL_CPU_RATIO if cc['cpu_ratio'] else None)} |",
              f"| peak RSS ≤ 1/3 of Scrapy's | {ratio_cells(cc['rss_ratio'])} | "
              f"{verdict(cc['rss_ratio']['median'] <= CRAWL_RSS_RATIO if cc['rss_ratio'] else None)} |",
              f"| same rows (count, SHA-256 of sorted (biz, mid, idx, title, published_at)) | "
              f"{'; '.join(f'{n} `{d[:16]}…`' for n, d in cc['rows'])} | "
              f"{'**equal**' if cc['rows_equal'] else '**FAIL: differ**'} |"]
        if not h.quick and w["articles"] < 20_000:
            L.append(f"| world of 20,000+ articles | {w['articles']} | **missed** |")
        gc = cc.get("group_commits")
        if gc:
            L += ["", f"How `mpwatch crawl` batched its writes (its log at `{CRAWL_LOG_ENV['RUST_LOG']}`): "
                  f"{fmt(gc['commits_per_run']['median'])} group commits per run (median), "
                  f"{gc['writes_mean']:.0f} writes per commit on average, {gc['writes_max']:,} at most. "
                  "The ingest benchmark (4) writes its snapshots in groups of that mean."]
        lin, disk = c["linear"], c["disk"]
        L += ["", "CPU per article (`mpwatch crawl` only, same settings):", "",
              "| world | articles | runs | CPU ms / article median | min | max |", "|---|---:|---:|---:|---:|---:|",
              f"| small (`--accounts {lin['small_world']['sim_args']['accounts']} --days "
              f"{lin['small_world']['sim_args']['days']}`) | {lin['small_articles']} | "
              f"{lin['small_ms_per_article']['n']} | {mmm(lin['small_ms_per_article'])} |",
              f"| large (`--accounts {lin['large_world']['sim_args']['accounts']} --days "
              f"{lin['large_world']['sim_args']['days']}`) | {lin['large_articles']} | "
              f"{lin['large_ms_per_article']['n']} | {mmm(lin['large_ms_per_article'])} |", "",
              f"Large / small: {lin['large_articles'] / lin['small_articles']:.2f}x the articles, "
              f"{fmt(lin['ratio'])}x the CPU per article (medians). Target ≤ {LINEAR_RATIO}x: "
              f"{verdict(lin['ratio'] <= LINEAR_RATIO)}.", "",
              "Disk writes of one `mpwatch crawl` of the comparison world:", "",
              "| written bytes median | min | max | final database bytes | written / database (median) | target | |",
              "|---:|---:|---:|---:|---:|---:|---|",
              f"| {mmm(disk['write_bytes'])} | {fmt(disk['db_bytes']['median'])} | {fmt(disk['ratio']['median'])}x | "
              f"≤ {DISK_RATIO:g}x | {verdict(disk['ratio']['median'] <= DISK_RATIO)} |", ""]
        if lin.get("small_disk_ratio"):
            L += [f"(On the small world: {fmt(lin['small_disk_ratio']['median'])}x.)", ""]

    ix = r.get("index")
    if ix:
        hist = ix["history"]
        t = ix["table"]
        L += ["### 2. Indices on the synthetic year", "",
              f"`mpwatch-bench history --accounts {hist['accounts']}` over {hist['days']} days: "
              f"{hist['articles']:,} articles, {hist['snapshots']:,} snapshots. Each `index --full` on a fresh copy; "
              "the peers read the database read-only and write CSV; all processes unpinned (DuckDB's default "
              f"uses both cores). Wall seconds of the whole process. Peers given `--now` = mpwatch's computed_at. "
              f"{ix['full_repeats']} run(s) of each, alternating, after {ix['full_warmup']} warm-up run(s).", "",
              "| | wall s median | min | max | CPU s median | peak RSS MB | mpwatch / peer (pairwise) | target | |",
              "|---|---:|---:|---:|---:|---:|---:|---|---|",
              f"| `mpwatch index --full` | {mmm(t['mpwatch']['wall'])} | {fmt(t['mpwatch']['cpu']['median'])} | "
              f"{fmt(t['mpwatch']['rss']['median'])} | | | |"]
        for name, label in (("pandas", "pandas"), ("duckdb-1-thread", "DuckDB, 1 thread"),
                            ("duckdb", "DuckDB, default threads"), ("sqlite3-sql", "sqlite3 SQL")):
            row = t[name]
            if row.get("timed_out"):
                L.append(f"| {label} | > {row['timed_out']:g} (stopped) | | | | | > {row['timed_out']:g} s, "
                         f"no result | {'mpwatch faster (< 1)' if name != 'sqlite3-sql' else '–'} | "
                         f"{verdict(True if name != 'sqlite3-sql' else None)} |")
                continue
            if name in ("pandas", "duckdb", "duckdb-1-thread"):
                target, met = "mpwatch faster (< 1)", row["ratio"]["median"] < 1
            else:
                target, met = None, None
            if name == ix["best_sql"]:
                target = (target + "; " if target else "") + f"best SQL: ≤ {BEST_SQL_RATIO:g}x"
                met = (met if met is not None else True) and row["ratio"]["median"] <= BEST_SQL_RATIO
            L.append(f"| {label} | {mmm(row['wall'])} | {fmt(row['cpu']['median'])} | {fmt(row['rss']['median'])} | "
                     f"{ratio_cells(row['ratio'])} | {target or '–'} | {verdict(met)} |")
        agree = "all agree" if ix["compare_rc"] == 0 else "**FAIL: disagree**"
        if ix.get("timed_out"):
            agree += f" (peers stopped by the time limit not compared: {', '.join(ix['timed_out'])})"
        inc, nn, rep = ix["incremental"], ix["nothing_new"], ix["report"]
        L += ["", f"Values (`bench/peers/compare.py`, index_values to 1e-9 relative with ranks, index_periods "
              f"column by column): {agree}.", "",
              "| | wall s median | min | max | target | |", "|---|---:|---:|---:|---:|---|",
              f"| `index` after one more day (`mpwatch-bench history --until +86400` on an indexed copy) | "
              f"{mmm(inc['wall'])} | < {INCREMENTAL_S:g} s | {verdict(inc['wall']['median'] < INCREMENTAL_S)} |",
              f"| `index` with nothing new | {mmm(nn['wall'])} | < {NOTHING_NEW_S:g} s | "
              f"{verdict(nn['wall']['median'] < NOTHING_NEW_S)} |",
              f"| `report --date {rep['date']} --top 10` | {mmm(rep['wall'])} | < {REPORT_S:g} s | "
              f"{verdict(rep['wall']['median'] < REPORT_S)} |", "",
              f"Incremental `index` (peak RSS {fmt(inc['rss']['median'])} MB; "
              f"`{inc['runs'][-1]['output'].splitlines()[-1] if inc['runs'][-1]['output'] else ''}`) against "
              f"`index --full` of the same database: "
              + ("identical index_values and index_periods." if inc["equals_full"]
                 else f"**FAIL: {inc['n_differences']} differences**."), ""]

    a = r.get("articles")
    if a:
        L += ["### 3. `articles --json` memory", "",
              "| database | articles | peak RSS MB median | min | max | wall s median |",
              "|---|---:|---:|---:|---:|---:|",
              f"| small | {a['small']['rows']:,} | {mmm(a['small']['rss'])} | {fmt(a['small']['wall']['median'])} |",
              f"| large | {a['large']['rows']:,} | {mmm(a['large']['rss'])} | {fmt(a['large']['wall']['median'])} |", "",
              f"{a['rows_ratio']:.1f}x the rows, {a['rss_ratio']:.2f}x the peak RSS. Target: flat (the harness "
              f"reads it as ≤ {FLAT_RSS_RATIO}x): {verdict(a['rss_ratio'] <= FLAT_RSS_RATIO)}.", ""]

    g = r.get("ingest")
    if g:
        # Results of a harness older than the group-commit benchmark have `batch` only.
        crawled, group = g.get("group_from_crawl"), g.get("group", g.get("batch"))
        source = (f"the mean of the crawl benchmark's mpwatch runs above: {crawled['writes']:,} writes in "
                  f"{crawled['writes'] / crawled['writes_mean']:,.0f} group commits, mean "
                  f"{crawled['writes_mean']:.0f}, largest {crawled['writes_max']:,}" if crawled else
                  f"the default, {INGEST_GROUP_DEFAULT}: the crawl benchmark did not run")
        L += ["### 4. Snapshot ingest through the store API", "",
              f"`mpwatch-bench history --accounts {g['accounts']}` over {g['days']} days on a fresh database "
              f"({g['snapshots']:,} snapshots), pinned to core 1. As the crawler writes them: each snapshot one "
              f"write of a group commit (`Store::write_group`, `--group-commit`), {group} per group "
              f"({source}). For reference, plain transactions of 64 `Tx::insert_snapshot` calls. The two "
              f"alternate.", "",
              "| | rows/s median | min | max | target | |", "|---|---:|---:|---:|---:|---|",
              f"| group commits of {group} (as the crawler batches) | {mmm(g['rows_per_s'])} | "
              f"≥ {INGEST_ROWS_S:,} | {verdict(g['rows_per_s']['median'] >= INGEST_ROWS_S)} |",
              f"| plain transactions of 64 (reference) | {mmm(g.get('plain64_rows_per_s'))} | | |"]
        if g.get("year"):
            y = g["year"]
            L += [f"| the synthetic year itself (1 run, {y['summary']['snapshots']:,} snapshots, plain "
                  f"transactions of {y['summary']['batch']}) | "
                  f"{fmt(y['summary']['snapshot_rows_per_second'])} | | | | |", "",
                  f"Writing the year took {y['wall_s']:.1f} s wall, {y['cpu_s']:.1f} CPU s, "
                  f"{y['max_rss_mb']:.0f} MB peak RSS and wrote {y['write_bytes'] / 1e9:.2f} GB to disk for a "
                  f"{y['db_bytes'] / 1e6:.0f} MB database."]
        L.append("")

    rt = r.get("rate")
    if rt:
        L += ["### 5. Rate precision", "",
              f"`[rate_limits.article_page] interval = \"{rt['interval']}\", burst = 1, jitter = \"0s\"` "
              f"(= {rt['configured']:g} requests/s), other classes as `sim --write-config` writes them, "
              f"`mpwatch crawl --no-metrics` of a world of {rt['world']['articles']} articles stopped (SIGINT) "
              f"a few seconds after the window; rate = (article page requests - 1) / (last - first arrival) over the "
              f"{rt['seconds']:g} s from the first page request, from the simulator's request log "
              "(`GET /__sim/requests`).", "",
              "| run | article pages | span s | achieved /s | error | gap ms median (min–max) | requests in all |",
              "|---|---:|---:|---:|---:|---:|---:|"]
        for i, run in enumerate(rt["runs"], 1):
            L.append(f"| {i} | {run['pages']} | {fmt(run['span_s'])} | {run['rate']:.4f} | "
                     f"{run['error'] * 100:+.2f} % | {ratio_cells(run['gap_ms'])} | {run['requests']} |")
        worst = rt["error"]["max"] if rt["error"] else None
        after = [(r["pages_after_stop_signal"], r["last_page_after_stop_s"]) for r in rt["runs"]
                 if r.get("pages_after_stop_signal") is not None]
        if after:
            L += ["", "After SIGINT (\"work in flight finishes\") the crawl still sent "
                  + "; ".join(f"{n} article page requests over {fmt(t)} s" for n, t in after) + "."]
        L += ["", f"Target: within {RATE_TOLERANCE * 100:g} % of {rt['configured']:g}/s: "
              f"{verdict(worst is not None and worst <= RATE_TOLERANCE)}"
              f"{' (1 run)' if len(rt['runs']) == 1 else ''}.", ""]

    s = r.get("scheduler")
    if s:
        late = s["start_lateness_s"]
        L += ["### 6. Scheduler scale (`mpwatch run`)", "",
              f"{s['accounts']:,} accounts (`mpwatch sim --accounts {s['world']['sim_args']['accounts']} --days 2 "
              f"--page-bytes 20000 --write-config`: the world's {s['world']['accounts']:,} accounts, of which the "
              f"database holds {s['accounts']:,} enabled), split into {s['groups']} groups; one `[[schedule]]` `discover` entry per "
              f"group firing once every {s['period_s']} s, staggered one group per second "
              f"(cron `S M * * * *`, `catch_up = \"none\"`), plus one `metrics` entry every minute. "
              f"Service on core 1, simulator on core 0, for {s['seconds']} s after it said `service started` "
              f"({s['startup_s']:.1f} s after launch), then SIGTERM (it took {s['stop_s']:.1f} s to exit).", "",
              "| | measured | target | |", "|---|---:|---:|---|",
              f"| peak RSS (ru_maxrss) | {s['max_rss_mb']:.0f} MB | < {SCHEDULER_RSS_MB} MB | "
              f"{verdict(s['max_rss_mb'] < SCHEDULER_RSS_MB)} |",
              f"| fires due in the window / started at their time | {s['fires_expected']} / {s['fires_started']} | "
              f"no missed fire | {verdict(s['fires_missed'] == 0)} |",
              f"| start lateness s (median, max) | {fmt(late['median']) if late else '–'}, "
              f"{fmt(late['max']) if late else '–'} | | |",
              f"| of those, runs that ended ok before the stop | {s['group_runs_finished']} | | |",
              f"| crawl runs by result at the end | {', '.join(f'{k} {v}' for k, v in sorted(s['crawl_runs_by_state'].items()))} | | |",
              f"| CPU s of the service | {s['cpu_s']:.1f} | | |",
              f"| articles stored / simulator requests | {s['articles_stored']:,} / {s['sim_requests']:,} | | |",
              f"| \"waiting for the database\" warnings | {s['waiting_for_database_warnings']} | | |", ""]
        L += [SCHEDULER_NOTE, ""]
    if h.args.note:
        L += [h.args.note, ""]
    return "\n".join(L)


SCHEDULER_NOTE = (
    "How this maps to the issue's target: mpwatch has no per-account schedule. Schedules are `[[schedule]]` "
    "entries of the config (a job and an optional `account` or `group`), and the config file is refused above "
    "1 MiB (`MAX_CONFIG_BYTES`, crates/mpwatch-core/src/files.rs), about 9,000 entries, so 100,000 "
    "per-account entries cannot be written; the benchmark staggers groups of accounts instead (written into "
    "`account_groups` of the benchmark's database). What is missing for the literal target: a per-account "
    "cadence stored in the database (or a schedule keyed by account) that the service fires itself. "
    "\"Started at their time\" counts fires whose `service_jobs.last_fire_at` is the fire and whose "
    "`last_started_at` is set; it does not mean the run finished.")


def write_outputs(h: Harness, meta: dict) -> None:
    h.out.mkdir(parents=True, exist_ok=True)
    markdown = render(h, meta)
    (h.out / "results.md").write_text(markdown + "\n")
    raw = {"meta": meta, "failures": h.failures,
           "results": {k: v for k, v in h.results.items() if not k.startswith("_")}}
    (h.out / "results.json").write_text(json.dumps(raw, indent=1, default=str) + "\n")
    h.log(f"wrote {h.out / 'results.md'} and {h.out / 'results.json'}")
    if not h.quick and not h.args.only and not h.args.no_docs:
        text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
        block = f"{BEGIN}\n{markdown}\n{END}"
        if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
            text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        DOCS.write_text(text)
        h.log(f"rewrote the bench/run.sh section of {DOCS}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 run, no warm-up (correctness, < 3 min)")
    ap.add_argument("--bin-dir", default=str(ROOT / "target" / "release"), help="mpwatch and mpwatch-bench")
    ap.add_argument("--python", default=str(ROOT / "target" / "bench-venv" / "bin" / "python"),
                    help="interpreter with the peers' packages")
    ap.add_argument("--out", default=str(ROOT / "target" / "bench"), help="results and work files")
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)} (docs/ is then not written)")
    ap.add_argument("--repeats", type=int, default=5, help="measured runs per command (full runs; default 5)")
    ap.add_argument("--crawl-pairs", type=int, help="mpwatch/Scrapy pairs on the comparison world (default: --repeats)")
    ap.add_argument("--no-peer-warmup", action="store_true", help="no Scrapy warm-up run (it is the costly one)")
    ap.add_argument("--rate-runs", type=int, help="rate-precision runs (default: --repeats)")
    ap.add_argument("--rate-seconds", type=float, help="length of a rate-precision run (default 60, quick 10)")
    ap.add_argument("--scheduler-accounts", type=int, help="default 100000 (quick 2000)")
    ap.add_argument("--scheduler-seconds", type=int, help="default 120 (quick 20)")
    ap.add_argument("--index-repeats", type=int, help="`index --full` and peer runs (default: --repeats)")
    ap.add_argument("--no-index-warmup", action="store_true", help="no warm-up round of `index --full` and peers")
    ap.add_argument("--peer-timeout", type=float, default=1800,
                    help="an index peer still running after this many seconds is stopped and reported so (1800)")
    ap.add_argument("--reuse", action="append", default=[], metavar="FILE:NAME[,NAME]",
                    help="take these benchmarks' results from an earlier results.json instead of running them "
                         "(the section says when they were measured)")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--keep-work", action="store_true", help="keep target/bench/work (databases, logs)")
    ap.add_argument("--note", help="a paragraph added at the end of the section")
    ap.add_argument("--render", metavar="RESULTS_JSON",
                    help="run nothing: write results.md (and docs/, for a complete full run) again from a "
                         "results.json, e.g. after a change to this file's tables")
    args = ap.parse_args()
    h = Harness(args)
    if args.render:
        earlier = json.loads(Path(args.render).read_text())
        meta = earlier["meta"]
        h.results, h.failures = earlier["results"], earlier["failures"]
        h.quick = meta["quick"]
        h.repeats, h.warmup = meta["repeats"], meta["warmup"]
        args.only = None if set(meta["benchmarks"]) == set(BENCHMARKS) else ",".join(meta["benchmarks"])
        args.note = args.note or meta.get("note")
        write_outputs(h, meta)
        return 1 if h.failures else 0
    for binary in (h.mpwatch, h.mpwatch_bench):
        if not os.access(binary, os.X_OK):
            print(f"no executable {binary} (build with cargo build --release -p mpwatch -p mpwatch-bench)",
                  file=sys.stderr)
            return 2
    selected = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(selected) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    reused = {}
    for spec in args.reuse:
        path, _, names = spec.rpartition(":")
        earlier = json.loads(Path(path).read_text())
        for name in names.split(","):
            if name not in earlier["results"]:
                print(f"{path} has no results for {name}", file=sys.stderr)
                return 2
            reused[name] = {"results": earlier["results"][name], "meta": earlier["meta"],
                            "failures": [f for f in earlier["failures"] if f.startswith(f"{name}:")]}
    shutil.rmtree(h.work, ignore_errors=True)
    h.logs.mkdir(parents=True)
    started = time.monotonic()
    version = subprocess.run([h.mpwatch, "--version"], capture_output=True, text=True).stdout.strip()
    dirty = any(not line[3:].startswith("bench/") for line in git("status", "--porcelain").splitlines())
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git("rev-parse", "--short", "HEAD"), "dirty": dirty, "bin_dir": str(h.bin),
            "version": version, "machine": machine(), "quick": h.quick, "repeats": h.repeats, "warmup": h.warmup,
            "load_before": " ".join(Path("/proc/loadavg").read_text().split()[:3]), "benchmarks": selected,
            "argv": sys.argv[1:], "note": args.note}
    h.log(f"mpwatch {version} from {h.bin}; {'quick' if h.quick else 'full'} run of {', '.join(selected)}")
    status = 0
    try:
        for name in selected:
            if name in reused:
                h.results[name] = dict(reused[name]["results"])
                m = reused[name]["meta"]
                h.results[name]["reused_from"] = {k: m.get(k) for k in ("date", "commit", "dirty", "load_before",
                                                                      "load_after", "argv", "bin_dir")}
                h.failures += reused[name]["failures"]
                h.log(f"== {name}: results of {m['date']} reused")
                continue
            began = time.monotonic()
            h.log(f"== {name}")
            h.results[name] = globals()[f"bench_{name}"](h)
            h.results[name]["duration_s"] = time.monotonic() - began
            h.log(f"== {name} done in {time.monotonic() - began:.0f} s")
            # A checkpoint: what was measured so far survives a later failure (--reuse it).
            (h.out / "results.partial.json").write_text(json.dumps(
                {"meta": meta, "failures": h.failures,
                 "results": {k: v for k, v in h.results.items() if not k.startswith("_")}}, default=str) + "\n")
    except Exception as error:  # the harness failed: still write what was measured
        import traceback
        traceback.print_exc()
        h.failures.append(f"harness error in {name}: {error}")
        status = 2
    finally:
        kill_started()
    meta["duration_s"] = time.monotonic() - started
    meta["load_after"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    write_outputs(h, meta)
    if not args.keep_work:
        for path in list(h.work.glob("**/*.db*")):
            path.unlink(missing_ok=True)
    h.log(f"done in {meta['duration_s']:.0f} s; "
          + ("all correctness checks passed" if not h.failures else f"{len(h.failures)} failure(s)"))
    if status:
        return status
    return 1 if h.failures else 0


if __name__ == "__main__":
    sys.exit(main())
