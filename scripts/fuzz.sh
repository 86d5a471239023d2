#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/fuzz_targets for SECONDS each (default 60), one
# after the other, and prints one summary line per target (runs, seconds). Stops at the
# first crash (or timeout, or out-of-memory), naming the target and the crash file.
#
# Usage: scripts/fuzz.sh [SECONDS]
#
# The `page` target starts from real pages (the fixtures in
# crates/mpwatch-wechat/tests/fixtures/pages, decompressed with zstd into
# fuzz/corpus/page) with inputs up to 128 KiB; `config` and `secrets` from the example
# files in config/ (also with their commented-out keys on); the others from their own
# corpus (fuzz/corpus/TARGET, empty the first time). A corpus grows from run to run.
# Each run's libFuzzer output goes to fuzz/target/fuzz-logs/TARGET.log. To limit the
# build's parallelism on a small machine:
#   CARGO_BUILD_JOBS=1 nice -n 19 scripts/fuzz.sh 60
set -euo pipefail

seconds="${1:-60}"
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS]   (seconds per target, a positive integer; default 60)" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed; install it with: cargo install cargo-fuzz" >&2
    exit 1
fi

# cargo-fuzz needs nightly features; the stable toolchain allows them with this.
export RUSTC_BOOTSTRAP=1

# Real pages to start the page target from (the same as docs/fuzzing.md).
page_seeds=(deleted_2025_zh blocked_violation_2025_law expired_link_2018 unavailable_2025
    article_2018_raw_original)
fixtures="$root/crates/mpwatch-wechat/tests/fixtures/pages"
mkdir -p corpus/page
if command -v zstd >/dev/null 2>&1; then
    for seed in "${page_seeds[@]}"; do
        if [[ ! -f "corpus/page/$seed.html" ]]; then
            zstd -d -q -f "$fixtures/$seed.html.zst" -o "corpus/page/$seed.html"
        fi
    done
else
    echo "warning: zstd is not installed; the page target starts without the real pages" >&2
fi

# The example files, as they are and with their commented-out keys and tables switched
# on, so that the config and secrets targets start from every key.
for pair in config:mpwatch.example.toml secrets:secrets.example.toml; do
    target="${pair%%:*}" example="${pair#*:}"
    mkdir -p "corpus/$target"
    [[ -f "corpus/$target/$example" ]] || cp "$root/config/$example" "corpus/$target/$example"
    [[ -f "corpus/$target/uncommented.$example" ]] ||
        sed -E 's/^# ((\[|[a-z_]+ = ).*)$/\1/' "$root/config/$example" >"corpus/$target/uncommented.$example"
done

# An OPML export as feed readers write one: a folder, a feed, an article link with a biz.
mkdir -p corpus/opml
[[ -f corpus/opml/export.opml ]] || cat >corpus/opml/export.opml <<'OPML'
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>mpwatch</title></head><body>
<outline text="science" title="science">
<outline type="rss" text="环球科学" title="环球科学" xmlUrl="http://127.0.0.1:4000/feeds/MzA5MDA0NDAwNA==.atom"
 htmlUrl="https://mp.weixin.qq.com/mp/profile_ext?action=home&amp;__biz=MzA5MDA0NDAwNA==" category="/publishers,societies"/>
</outline>
<outline text="科研圈" htmlUrl="https://mp.weixin.qq.com/s?__biz=MzI4NjUwMDQ3NA==&amp;mid=1&amp;idx=1&amp;sn=a"/>
<!-- a comment --><![CDATA[ text ]]>
</body></opml>
OPML

targets=()
for file in fuzz_targets/*.rs; do
    name="$(basename "$file" .rs)"
    targets+=("$name")
done
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "error: no targets in fuzz/fuzz_targets" >&2
    exit 1
fi

echo "building ${#targets[@]} targets: ${targets[*]}"
if ! cargo fuzz build -O; then
    echo "error: the fuzz targets do not build (see above)" >&2
    exit 1
fi

logs="$root/fuzz/target/fuzz-logs"
mkdir -p "$logs"
summary=()
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    extra=()
    if [[ "$target" == page ]]; then
        extra=(-max_len=131072)
    fi
    mkdir -p "corpus/$target"
    echo "fuzzing $target for $seconds s (log: ${log#"$root"/})"
    status=0
    cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$seconds" "${extra[@]}" \
        >"$log" 2>&1 || status=$?
    if [[ $status -ne 0 ]]; then
        # libFuzzer: "Test unit written to ./artifacts/TARGET/crash-…" (or timeout-, oom-, leak-).
        crash="$(sed -n 's/^.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        if [[ -n "$crash" ]]; then
            crash="$(cd "$(dirname "$crash")" && pwd)/$(basename "$crash")"
            kind="$(basename "$crash")"
            kind="${kind%%-*}"
            echo "FAILED: target '$target' found a $kind; the input is ${crash#"$root"/}" >&2
            echo "  reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O $target ${crash#"$root"/fuzz/}" >&2
            echo "  minimize:  cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin -O $target ${crash#"$root"/fuzz/}" >&2
        else
            echo "FAILED: cargo fuzz run $target exited with status $status and wrote no crash file" >&2
        fi
        echo "  the last lines of ${log#"$root"/}:" >&2
        tail -n 20 "$log" | sed 's/^/    /' >&2
        exit 1
    fi
    # libFuzzer's last line: "Done 623764 runs in 31 second(s)".
    done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)"
    runs="$(awk '{print $2}' <<<"$done_line")"
    took="$(awk '{print $5}' <<<"$done_line")"
    summary+=("$(printf '%-8s %12s runs in %s s' "$target" "${runs:-?}" "${took:-?}")")
    echo "${summary[-1]}"
done

echo "no crash; per target:"
for line in "${summary[@]}"; do
    echo "$line"
done
