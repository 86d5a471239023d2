#!/usr/bin/env bash
# Checks deploy/: the unit passes `systemd-analyze verify`, its exposure
# (`systemd-analyze security --offline`) is at most MAX_EXPOSURE, and the sysusers
# and tmpfiles files give the intended owners and modes (in a scratch root).
# Needs no running systemd and no installed mpwatch. CI runs it as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")"

MAX_EXPOSURE=2.0
UNIT=mpwatch.service

# systemd-analyze, and /bin/kill (procps) which ExecReload= names and verify checks.
if ! command -v systemd-analyze >/dev/null 2>&1 || [ ! -x /bin/kill ]; then
    echo "installing systemd and procps"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y systemd procps >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y systemd procps >/dev/null; }
fi
export SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# (a) verify. It refuses an ExecStart= binary that does not exist, so verify a copy
# whose ExecStart= names a stub; everything else is the unit as shipped.
printf '#!/bin/sh\nexit 0\n' >"$tmp/mpwatch"
chmod 0755 "$tmp/mpwatch"
sed "s|^ExecStart=/usr/local/bin/mpwatch |ExecStart=$tmp/mpwatch |" "$UNIT" >"$tmp/$UNIT"
if cmp -s "$UNIT" "$tmp/$UNIT"; then
    echo "error: $UNIT: ExecStart= is not /usr/local/bin/mpwatch ..." >&2
    exit 1
fi
echo "== systemd-analyze verify $UNIT"
# verify exits 0 on warnings (unknown keys, unparsable values), so any line about
# our unit fails the check; lines about other units of this host are only shown.
out=$(systemd-analyze verify "$tmp/$UNIT" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
if [ -n "$out" ]; then
    printf '%s\n' "$out"
    if grep -q mpwatch <<<"$out"; then
        echo "error: systemd-analyze verify complained about $UNIT" >&2
        exit 1
    fi
fi
echo "ok"

# (b) exposure.
echo "== systemd-analyze security --offline=true $UNIT"
report=$(systemd-analyze security --no-pager --offline=true "$UNIT" 2>&1) ||
    { printf '%s\n' "$report" >&2; exit 1; }
exposure=$(sed -n 's/^.*Overall exposure level for [^:]*: *\([0-9][0-9]*\(\.[0-9]*\)\{0,1\}\).*$/\1/p' <<<"$report")
if [ -z "$exposure" ]; then
    printf '%s\n' "$report" >&2
    echo "error: no 'Overall exposure level' line" >&2
    exit 1
fi
# The settings still costing something, for the log.
grep '✗' <<<"$report" || true
echo "exposure: $exposure (at most $MAX_EXPOSURE)"
if ! awk -v e="$exposure" -v max="$MAX_EXPOSURE" 'BEGIN { exit !(e + 0 <= max + 0) }'; then
    printf '%s\n' "$report" >&2
    echo "error: exposure $exposure is above $MAX_EXPOSURE" >&2
    exit 1
fi

# (c) sysusers + tmpfiles in a scratch root: the user exists, the modes are right.
echo "== systemd-sysusers, systemd-tmpfiles (scratch root)"
if [ "$(id -u)" != 0 ]; then
    echo "skipped: needs root (chown)"
    exit 0
fi
root="$tmp/root"
mkdir -p "$root/etc"
systemd-sysusers --root="$root" "$PWD/mpwatch.sysusers"
systemd-tmpfiles --root="$root" --create "$PWD/mpwatch.tmpfiles"
id=$(awk -F: '$1 == "mpwatch" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "mpwatch" { print $3 }' "$root/etc/group")
[ -n "$id" ] && [ -n "$gid" ] || { echo "error: no mpwatch user/group created" >&2; exit 1; }
check() { # path mode uid gid
    local got
    got=$(stat -c '%a %u %g' "$root$1")
    if [ "$got" != "$2 $3 $4" ]; then
        echo "error: $1 is '$got' (mode uid gid), expected '$2 $3 $4'" >&2
        exit 1
    fi
    echo "$1 $2 uid=$3 gid=$4"
}
check /etc/mpwatch 750 0 "$gid"
check /var/lib/mpwatch 2770 "$id" "$gid"
check /var/lib/mpwatch/mpwatch.db 660 "$id" "$gid"
echo "ok"
