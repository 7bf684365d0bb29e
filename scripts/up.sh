#!/usr/bin/env bash
# README command #1: set up the runtime environment and run `keel up` on the embedded default
# (SQLite + ./.keel). Arguments pass through to `keel up`, e.g. --data-dir DIR --port PORT.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/bootstrap.sh
source scripts/bootstrap.sh

"$UV" sync --locked --no-dev
exec "$UV" run --locked --no-dev keel up "$@"
