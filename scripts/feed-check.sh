#!/usr/bin/env bash
# Checks mpwatch's feeds with Python's feedparser (pinned, from PyPI), a second
# well-kept parser beside the feed-rs of crates/mpwatch-serve/tests: every feed parses
# without a well-formedness error (bozo), with its items, titles and counts line.
#
#   scripts/feed-check.sh [DATABASE]      # default: a fresh 3-day `mpwatch demo` database
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/feed-venv
if [[ ! -x $venv/bin/python ]] || ! $venv/bin/python -c 'import feedparser' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet feedparser==6.0.11
fi
dir=$(mktemp -d)
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
db=${1:-}
cargo build --quiet --release
if [[ -z $db ]]; then
    db=$dir/demo.db
    target/release/mpwatch --db "$db" demo --days 3 --accounts 4 >/dev/null
fi
target/release/mpwatch --db "$db" serve --listen 127.0.0.1:0 2>"$dir/serve.log" &
server=$!
for _ in $(seq 100); do
    grep -q '^serving http' "$dir/serve.log" 2>/dev/null && break
    sleep 0.1
done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$dir/serve.log" | head -1)
[[ -n $base ]] || { cat "$dir/serve.log"; exit 1; }
"$venv/bin/python" scripts/feed_check.py "$base"
