#!/usr/bin/env bash
# Soak test (not in the default test run): `scripts/soak.sh [MINUTES] [OUT_DIR]`.
#
# Runs `mpwatch run` (the service) for MINUTES (default 30) against the simulator on
# loopback answering with a hostile scenario (502s, resets, stalls, 429s, quotas that
# bring verification pages and frequency control), with schedules every few seconds.
# Every 15 s it records the service's resident memory, the queue by state and the
# articles stored. At the end it stops the service with SIGTERM, clears the faults,
# runs plain `mpwatch crawl`s (again once the cooldowns it caused ran out) and compares the database with the simulator's truth
# (/__sim/truth): missing, duplicated and wrong-status articles must all be zero.
#
# Both clocks run in real time (the service has no accelerated clock yet), so the
# world's history is crawled under faults again and again rather than new days being
# published. Needs python3 (standard library only) for the comparison.
set -euo pipefail

minutes=${1:-30}
out=${2:-$(mktemp -d /tmp/mpwatch-soak.XXXXXX)}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"

echo "building the release binary…"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/mpwatch"

cat > "$out/scenario.json" <<'JSON'
{
  "quota": {
    "per_client": {"limit": 600, "window": 60},
    "per_credential": {"limit": 120, "window": 60},
    "cooldown": 60
  },
  "faults": [
    {"endpoint": "any", "fault": {"kind": "status", "status": 502}, "probability": 0.08},
    {"endpoint": "any", "fault": {"kind": "reset"}, "probability": 0.04},
    {"endpoint": "any", "fault": {"kind": "stall"}, "probability": 0.02},
    {"endpoint": "any", "fault": {"kind": "status", "status": 429, "retry_after": 3}, "probability": 0.04},
    {"endpoint": "article", "fault": {"kind": "truncate"}, "probability": 0.02},
    {"endpoint": "profile_ext", "fault": {"kind": "garbage"}, "probability": 0.03}
  ]
}
JSON

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

"$bin" sim --listen 127.0.0.1:0 --accounts 40 --days 30 --page-bytes 60000 \
  --scenario "$out/scenario.json" --write-config "$out/world" > "$out/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  grep -q '^serving' "$out/sim.log" && break
  sleep 0.1
done
base=$(sed -n 's/^WeChat simulator at //p' "$out/sim.log")
[ -n "$base" ] || { echo "the simulator did not start:"; cat "$out/sim.log"; exit 1; }
config="$out/world/mpwatch.toml"
cat >> "$config" <<'TOML'

[service]
stop_timeout = "10s"

[[schedule]]
name = "discover"
cron = "*/20 * * * * *"
job = "discover"

[[schedule]]
name = "metrics"
cron = "*/10 * * * * *"
job = "metrics"

[[schedule]]
name = "index"
cron = "0 * * * * *"
job = "index"

[[schedule]]
name = "maintenance"
cron = "30 */5 * * * *"
job = "maintenance"
TOML

"$bin" --config "$config" run > "$out/service.log" 2>&1 &
service=$!
pids+=("$service")
echo "soaking for $minutes min: simulator $base, files in $out"
echo "elapsed_s,rss_kb,articles,queue" > "$out/samples.csv"
end=$(( $(date +%s) + minutes * 60 ))
start=$(date +%s)
while [ "$(date +%s)" -lt "$end" ]; do
  kill -0 "$service" 2>/dev/null || { echo "the service died:"; tail -20 "$out/service.log"; exit 1; }
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$service/status")
  status=$("$bin" --config "$config" status --json 2>/dev/null || echo '{}')
  line=$(python3 -c '
import json, sqlite3, sys
status = json.loads(sys.argv[1] or "{}")
queue = status.get("queue", {})
db = sqlite3.connect("file:" + sys.argv[2] + "?mode=ro", uri=True)
articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
print(articles, json.dumps(queue, separators=(",", ":")).replace(",", ";"), sep=",")
' "$status" "$out/world/mpwatch.db")
  echo "$(( $(date +%s) - start )),$rss,$line" >> "$out/samples.csv"
  sleep 15
done

kill -TERM "$service"
wait "$service" || true
python3 -c '
import sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/__sim/scenario", data=b"{}", method="PUT",
                                 headers={"content-type": "application/json"})
urllib.request.urlopen(request).read()
' "$base"
# Cooldowns the faults caused (up to the config's cooldown_max, 1 min) still hold the
# credential and host: crawl, let them run out, crawl again.
"$bin" --config "$config" crawl > "$out/final-crawl.txt" 2>&1 || true
sleep 65
"$bin" --config "$config" crawl >> "$out/final-crawl.txt" 2>&1

python3 - "$base" "$out/world/mpwatch.db" "$out/samples.csv" <<'PY' | tee "$out/summary.txt"
import csv, json, sqlite3, sys, urllib.request
base, db_path, samples = sys.argv[1:4]
truth = json.load(urllib.request.urlopen(base + "/__sim/truth"))["articles"]
db = sqlite3.connect("file:" + db_path + "?mode=ro", uri=True)
stored = {}
duplicates = 0
for url, status, title in db.execute("SELECT url, status, title FROM articles"):
    duplicates += url in stored
    stored[url] = (status, title)
missing = [a["url"] for a in truth if a["url"] not in stored]
# A page deleted or blocked after its last fetch is re-checked a day later; only other
# differences are wrong.
changed_since = [a["url"] for a in truth if a["url"] in stored and stored[a["url"]][0] == "ok" and a["status"] != "ok"]
wrong = [a["url"] for a in truth if a["url"] in stored and stored[a["url"]][0] not in (a["status"], "ok")]
rows = list(csv.DictReader(open(samples)))
rss = [int(r["rss_kb"]) for r in rows if r["rss_kb"]]
requests = db.execute("SELECT count(*) FROM fetch_log").fetchone()[0]
runs = db.execute("SELECT result, count(*) FROM crawl_runs GROUP BY 1").fetchall()
print(f"samples: {len(rows)}; RSS first {rss[0] / 1024:.1f} MB, max {max(rss) / 1024:.1f} MB, last {rss[-1] / 1024:.1f} MB")
print(f"requests logged: {requests}; runs by result: {dict(runs)}")
print(f"truth: {len(truth)} articles; stored {len(stored)}; missing {len(missing)}; duplicated {duplicates}; "
      f"wrong status {len(wrong)}; deleted or blocked since their fetch {len(changed_since)}")
integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
print(f"integrity_check: {integrity}")
sys.exit(0 if not missing and not duplicates and not wrong and integrity == "ok" else 1)
PY
