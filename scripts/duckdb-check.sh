#!/usr/bin/env bash
# Checks that DuckDB reads an mpwatch database right through its sqlite extension: every
# view binds with numeric columns typed as numbers (not VARCHAR), and the DuckDB recipe
# of docs/schema.md runs. Pinned versions from PyPI (the extension cannot be downloaded
# at run time here; the PyPI wheel of it exists for DuckDB 1.5.5 only).
#
#   scripts/duckdb-check.sh [DATABASE]      # default: a fresh 3-day `mpwatch demo` database
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/duckdb-venv
if [[ ! -x $venv/bin/python ]] || ! $venv/bin/python -c 'import duckdb, duckdb_extension_sqlite_scanner' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet duckdb==1.5.5 duckdb-extension-sqlite-scanner==1.5.5
fi
db=${1:-}
if [[ -z $db ]]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    db=$dir/demo.db
    cargo run --quiet --release -- --db "$db" demo --days 3 --accounts 4 >/dev/null
fi
"$venv/bin/python" scripts/duckdb_check.py "$db" docs/schema.md
