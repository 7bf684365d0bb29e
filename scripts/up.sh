#!/usr/bin/env bash
# README command #1: set up the runtime environment and run `keel up` on the embedded default
# (SQLite + ./.keel). Arguments pass through to `keel up`, e.g. --data-dir DIR --port PORT.
# --demo also seeds the demo portfolio (`keel demo`) once the server answers; the data dir must
# hold no models yet (keel demo refuses otherwise), e.g. ./scripts/up.sh --demo --data-dir /tmp/demo
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh

demo=0
args=()
for arg in "$@"; do
    if [ "$arg" = "--demo" ]; then demo=1; else args+=("$arg"); fi
done

"$UV" sync --locked --no-dev
if [ "$demo" = 0 ]; then
    exec "$UV" run --locked --no-dev keel up "${args[@]}"
fi

# Where `keel up` will listen and keep its data (its own defaults), for `keel demo` to find.
host=127.0.0.1 port=8420 data_dir=.keel
i=0
while [ "$i" -lt "${#args[@]}" ]; do
    value="${args[$((i + 1))]:-}"
    case "${args[$i]}" in
        --host) host="$value" ;;
        --host=*) host="${args[$i]#*=}" ;;
        --port) port="$value" ;;
        --port=*) port="${args[$i]#*=}" ;;
        --data-dir) data_dir="$value" ;;
        --data-dir=*) data_dir="${args[$i]#*=}" ;;
    esac
    i=$((i + 1))
done
case "$host" in 0.0.0.0 | "::" | "") host=127.0.0.1 ;; esac

"$UV" run --locked --no-dev keel up "${args[@]}" &
server=$!
trap 'kill "$server" 2>/dev/null || true' INT TERM

url="http://$host:$port"
# Wait (up to 120 s) until the server says it is ready, or stop if it exited.
for _ in $(seq 240); do
    kill -0 "$server" 2>/dev/null || { wait "$server"; exit $?; }
    if .venv/bin/python -c "import urllib.request as u; u.urlopen('$url/readyz', timeout=2)" \
        2>/dev/null; then
        break
    fi
    sleep 0.5
done
if ! KEEL_URL="$url" KEEL_HOME="$data_dir" .venv/bin/keel demo; then
    echo "up.sh: keel demo failed (above); Keel keeps running at $url" >&2
fi
wait "$server"
