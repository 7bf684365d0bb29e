#!/usr/bin/env bash
# README command #2: set up the development environment and run the whole test suite:
# ruff (lint + format check), mypy --strict, the import contracts (.importlinter) and pytest.
# Arguments pass through to pytest, e.g. ./scripts/test.sh -k registry -x
#
# PostgreSQL tests run against $KEEL_TEST_DATABASE_URL when set, otherwise against a throwaway
# cluster started from the server binaries in /usr/lib/postgresql/*/bin when those exist, and are
# skipped otherwise (or fail, when KEEL_REQUIRE_POSTGRES=1).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh

# Milliseconds since the epoch (bash >= 5 has EPOCHREALTIME; fall back to whole seconds).
now_ms() {
    if [ -n "${EPOCHREALTIME:-}" ]; then
        local t="${EPOCHREALTIME/[.,]/}"
        echo $((10#$t / 1000))
    else
        echo $(($(date +%s) * 1000))
    fi
}
# seconds MS: "12.3s"
seconds() { printf '%d.%ds' $(($1 / 1000)) $((($1 % 1000) / 100)); }

suite_started=$(now_ms)
timings=()

# step NAME COMMAND...: run one step, print how long it took, stop the suite on failure.
step() {
    local name="$1"
    shift
    echo
    echo "==> ${name}: $*"
    local started status=0
    started=$(now_ms)
    "$@" || status=$?
    local took verdict=ok
    took="$(seconds $(($(now_ms) - started)))"
    [ "$status" -eq 0 ] || verdict="FAILED (exit ${status})"
    timings+=("$(printf '%-18s %8s  %s' "$name" "$took" "$verdict")")
    echo "<== ${name}: ${verdict} in ${took}"
    if [ "$status" -ne 0 ]; then
        if [ "$name" = pytest ] && [ "$status" -eq 5 ]; then
            echo "test.sh: pytest collected no tests (exit 5); an empty run is a failure, not a pass." >&2
        fi
        summary
        echo "test.sh: FAILED at step '${name}'." >&2
        exit "$status"
    fi
}

summary() {
    echo
    echo "---- timings ----"
    local line
    for line in "${timings[@]}"; do
        echo "$line"
    done
    printf '%-18s %8s\n' total "$(seconds $(($(now_ms) - suite_started)))"
}

step "uv sync"        "$UV" sync --locked --all-extras
step "ruff check"     "$UV" run --locked ruff check .
step "ruff format"    "$UV" run --locked ruff format --check .
step "mypy"           "$UV" run --locked mypy
step "import contracts" "$UV" run --locked lint-imports
# pytest-xdist: one worker per core (KEEL_TEST_WORKERS=0 runs them in this process), whole test
# files per worker so a file's expensive servers start once.
step "pytest"         "$UV" run --locked pytest -n "${KEEL_TEST_WORKERS:-auto}" --dist loadfile "$@"

summary
echo "test.sh: all steps passed."
