#!/usr/bin/env bash
# Issue 12's benchmark harness: bench/run.sh [--quick] [options of bench/harness.py]
#
# Builds the release binaries (cargo build --release -p mpwatch -p mpwatch-bench), or
# uses MPWATCH_BIN_DIR when it is set (a directory holding mpwatch and mpwatch-bench
# built from the current code); creates the peers' virtual environment under
# target/bench-venv when it is missing or bench/peers/requirements.txt changed; then
# runs bench/harness.py, which writes target/bench/results.md and results.json and, on
# a full (non --quick) run of every benchmark, the section of docs/benchmarks.md between
# the bench/run.sh markers.
#
#   bash bench/run.sh --quick                 # everything small, 1 run: < 3 minutes
#   bash bench/run.sh                         # full size, median of 5 after a warm-up
#   bash bench/run.sh --crawl-pairs 1 --no-peer-warmup --rate-runs 1 \
#       --index-repeats 1 --no-index-warmup --peer-timeout 120    # about 35 min on 2 cores:
#       # the Scrapy peer needs ~15 min for the 20,933-article world, the index peers
#       # 1-5.5 min each on the synthetic year
#   python3 bench/harness.py --help           # every option
#
# Exit status: 1 when a correctness check failed (the crawlers stored different rows, an
# index peer disagrees with mpwatch, incremental index != full), 2 when the harness failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ -n "${MPWATCH_BIN_DIR:-}" ]]; then
    bin=$(cd "$MPWATCH_BIN_DIR" && pwd)
    echo "bench/run.sh: using the binaries in $bin (MPWATCH_BIN_DIR)"
else
    cargo build --release -p mpwatch -p mpwatch-bench
    bin=$root/target/release
fi

venv=${MPWATCH_BENCH_VENV:-$root/target/bench-venv}
requirements=$root/bench/peers/requirements.txt
stamp=$venv/.bench-requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]] \
    || ! "$venv/bin/python" -c 'import scrapy, parsel, lxml, pandas, duckdb, duckdb_extension_sqlite_scanner' 2>/dev/null; then
    echo "bench/run.sh: installing the peers into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$requirements"
    echo "$want" > "$stamp"
fi

command -v sqlite3 >/dev/null || { echo "bench/run.sh: the sqlite3 CLI is needed (apt-get install sqlite3)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "bench/run.sh: taskset is needed (util-linux)" >&2; exit 2; }

exec python3 "$root/bench/harness.py" --bin-dir "$bin" --python "$venv/bin/python" "$@"
