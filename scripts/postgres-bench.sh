#!/usr/bin/env bash
# Issue 15's figures for one node: the same crawl into SQLite and into PostgreSQL, and
# `db copy` of a history both ways. Needs release binaries (cargo build --release) and
# a PostgreSQL cluster (MPWATCH_TEST_POSTGRES_URL, e.g. from
# `eval "$(scripts/postgres-throwaway.sh start)"`); talks to the simulator on loopback
# only.
#
#   scripts/postgres-bench.sh crawl ACCOUNTS DAYS    # sim world, limits lifted, feeds off
#   scripts/postgres-bench.sh nodes ACCOUNTS DAYS N  # the same world, N nodes at once
#   scripts/postgres-bench.sh copy FILE.db           # FILE.db -> PostgreSQL -> SQLite
#
# Prints wall time, CPU seconds and peak RSS of each run (GNU time), and the articles
# stored; each side starts from the same copy of the world's database. `nodes` runs N
# `mpwatch run` services, each its own node (`[node] name`) with its own credential set
# from the simulator, into one PostgreSQL database, and prints the time until the world
# is stored (every article, every live one with its counts) and what each node did.
set -euo pipefail
cd "$(dirname "$0")/.."
mpwatch=$PWD/target/release/mpwatch
url=${MPWATCH_TEST_POSTGRES_URL:?set MPWATCH_TEST_POSTGRES_URL (scripts/postgres-throwaway.sh start)}
work=$(mktemp -d /tmp/mpwatch-pgbench.XXXXXX)
trap 'kill "${sim_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

# A new database on the cluster, named NAME; prints its URL.
new_database() {
    psql "$url" -qc "DROP DATABASE IF EXISTS $1" -qc "CREATE DATABASE $1" >/dev/null
    echo "$url" | sed -E "s#(postgres(ql)?://[^/]*/)[^?]*#\1$1#"
}

timed() {
    local label=$1
    shift
    /usr/bin/time -f "$label: %e s wall, %U s user + %S s system, %M KB peak" "$@" >"$work/out" 2>"$work/err" \
        || { cat "$work/err" >&2; exit 1; }
    grep -E "wall" "$work/err"
}

# A simulated world that stands still, limits lifted, feeds off: $work/w.
still_world() {
    local accounts=$1 days=$2
    "$mpwatch" sim --listen 127.0.0.1:0 --accounts "$accounts" --days "$days" --page-bytes 20000 \
        --write-config "$work/w" >"$work/sim.out" 2>/dev/null &
    sim_pid=$!
    until grep -q '^serving' "$work/sim.out" 2>/dev/null; do sleep 0.1; done
    base=$(sed -n 's/^WeChat simulator at //p' "$work/sim.out")
    # The world stands still while both sides crawl it, and both find articles through
    # the list API only (as bench/run.sh's crawl benchmark).
    now=$(curl -s "$base/__sim/clock" | python3 -c 'import json,sys; print(json.load(sys.stdin)["now"])')
    curl -s -X PUT -H 'content-type: application/json' -d "{\"mode\":\"fixed\",\"at\":$now}" "$base/__sim/clock" >/dev/null
    sqlite3 "$work/w/mpwatch.db" "UPDATE account_sources SET enabled = 0 WHERE kind = 'feed'"
    python3 - "$work/w/mpwatch.toml" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
for cls in ("article_page", "list_api", "count_api", "feed"):
    def lift(match):
        body = re.sub(r"^interval = .*$", 'interval = "1us"', match.group(2), flags=re.M)
        return match.group(1) + re.sub(r"^burst = .*$", "burst = 100000", body, flags=re.M)
    text = re.sub(rf"^(\[rate_limits\.{cls}\]\n)(.*?)(?=^\[|\Z)", lift, text, flags=re.M | re.S)
open(path, "w").write(text)
EOF
}

case ${1:-} in
crawl)
    still_world "${2:?accounts}" "${3:?days}"
    cp "$work/w/mpwatch.db" "$work/sqlite.db"
    target=$(new_database mpwatch_bench_crawl)
    "$mpwatch" db copy --from "$work/w/mpwatch.db" --to "$target" >/dev/null
    timed "crawl into SQLite" "$mpwatch" --config "$work/w/mpwatch.toml" --db "$work/sqlite.db" crawl
    timed "crawl into PostgreSQL" "$mpwatch" --config "$work/w/mpwatch.toml" --db "$target" crawl
    echo "articles: SQLite $(sqlite3 "$work/sqlite.db" 'SELECT count(*) FROM articles'), PostgreSQL $(psql "$target" -Atc 'SELECT count(*) FROM articles')"
    echo "snapshots: SQLite $(sqlite3 "$work/sqlite.db" 'SELECT count(*) FROM metric_snapshots'), PostgreSQL $(psql "$target" -Atc 'SELECT count(*) FROM metric_snapshots')"
    ;;
nodes)
    still_world "${2:?accounts}" "${3:?days}"
    count=${4:?nodes}
    cron=${NODES_CRON:-*/20 * * * * *}
    target=$(new_database mpwatch_bench_nodes)
    "$mpwatch" db copy --from "$work/w/mpwatch.db" --to "$target" >/dev/null
    # What the world holds: every article stored, every live one with its counts.
    read -r articles live < <(curl -s "$base/__sim/truth" | python3 -c '
import json, sys
a = json.load(sys.stdin)["articles"]
print(len(a), sum(1 for x in a if x["status"] == "ok"))')
    pids=()
    for n in $(seq 1 "$count"); do
        curl -s -X POST -H 'content-type: application/json' -d "{\"name\":\"node-$n\"}" "$base/__sim/credentials" \
            | python3 -c '
import json, sys
c = json.load(sys.stdin)
print("[[client]]")
for key in ("name", "uin", "key", "pass_ticket", "appmsg_token", "cookie"):
    print(f"{key} = {json.dumps(c[key])}")' >"$work/w/secrets-$n.toml"
        chmod 600 "$work/w/secrets-$n.toml"
        sed -e "s/^secrets_file = .*/secrets_file = \"secrets-$n.toml\"/" "$work/w/mpwatch.toml" >"$work/w/node-$n.toml"
        # `mpwatch run` as a service: discover and metrics at start, then every
        # $cron (a seconds field; every 20 s unless NODES_CRON says otherwise).
        printf '\n[node]\nname = "node-%s"\n\n[[schedule]]\nname = "discover"\ncron = "%s"\njob = "discover"\n\n[[schedule]]\nname = "metrics"\ncron = "%s"\njob = "metrics"\n' \
            "$n" "$cron" "$cron" >>"$work/w/node-$n.toml"
    done
    start=$(date +%s.%N)
    for n in $(seq 1 "$count"); do
        /usr/bin/time -f "node-$n: %U s user + %S s system, %M KB peak" \
            "$mpwatch" --config "$work/w/node-$n.toml" --db "$target" run >"$work/node-$n.out" 2>"$work/node-$n.err" &
        pids+=($!)
    done
    until [ "$(psql "$target" -Atc "SELECT (SELECT count(*) FROM articles WHERE status != 'pending') = $articles
            AND (SELECT count(DISTINCT article_id) FROM metric_snapshots) = $live")" = t ]; do
        sleep 0.2
    done
    wall=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
    psql "$target" -Atc "SELECT node, holder FROM crawler_lock ORDER BY node" >"$work/nodes.txt"
    # SIGTERM to each service (the child of its `time`), which then reports.
    for pid in "${pids[@]}"; do pkill -TERM -P "$pid"; done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    for n in $(seq 1 "$count"); do grep -h "KB peak" "$work/node-$n.err"; done
    pages=$(psql "$target" -Atc "SELECT count(*) FROM fetch_log WHERE url_class = 'article_page'")
    echo "$count node(s): the world ($articles articles, $live with counts) stored in $wall s; $pages page fetches ($(python3 -c "print(round($pages / $wall))") pages/s)"
    echo "nodes (node|holder):"
    cat "$work/nodes.txt"
    echo "items deferred by busy writes (deadlocks), by node:"
    for n in $(seq 1 "$count"); do echo "node-$n|$(grep -c 'deferred:' "$work/node-$n.err" || true)"; done
    echo "runs by state:"
    psql "$target" -Atc "SELECT result, count(*) FROM crawl_runs GROUP BY 1 ORDER BY 1"
    echo "page fetches by holder:"
    psql "$target" -Atc "SELECT r.holder, count(*) FROM fetch_log f JOIN crawl_runs r ON r.id = f.crawl_run_id
        WHERE f.url_class = 'article_page' GROUP BY 1 ORDER BY 1"
    ;;
copy)
    file=${2:?FILE.db}
    target=$(new_database mpwatch_bench_copy)
    timed "db copy SQLite -> PostgreSQL" "$mpwatch" db copy --from "$file" --to "$target"
    timed "db copy PostgreSQL -> SQLite" "$mpwatch" db copy --from "$target" --to "$work/back.db"
    echo "sizes: SQLite $(stat -c %s "$file") bytes, PostgreSQL $(psql "$target" -Atc 'SELECT pg_database_size(current_database())') bytes"
    psql "$target" -Atc "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC LIMIT 6"
    ;;
*)
    echo "usage: $0 crawl ACCOUNTS DAYS | nodes ACCOUNTS DAYS N | copy FILE.db" >&2
    exit 2
    ;;
esac
