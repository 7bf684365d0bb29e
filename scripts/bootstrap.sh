# shellcheck shell=bash
# Sourced helper (not executable on its own): makes sure uv 0.13.9 is available and exports
# KEEL_ROOT (the repository root) and UV (the path to the uv binary to use).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
#
# It never needs a writable system pip: when the uv on PATH is missing or has another version,
# it creates ./.tools (a private virtualenv, git-ignored) and installs uv==0.13.9 into it.

KEEL_UV_VERSION="0.13.9"
KEEL_MIN_PYTHON="3.11"

_keel_bootstrap_die() {
    echo "bootstrap: error: $*" >&2
    return 1
}

_keel_uv_version() {
    # Prints the bare version of the uv binary given as $1 ("0.13.9"), or nothing.
    "$1" --version 2>/dev/null | awk 'NR == 1 && $1 == "uv" { print $2 }'
}

_keel_bootstrap() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" || return 1
    KEEL_ROOT="$(cd "$here/.." && pwd)" || return 1
    export KEEL_ROOT

    if ! command -v python3 >/dev/null 2>&1; then
        _keel_bootstrap_die "python3 was not found on PATH; Keel needs Python >= ${KEEL_MIN_PYTHON}."
        return 1
    fi
    local pyver
    pyver="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" || {
        _keel_bootstrap_die "could not run python3 to read its version."
        return 1
    }
    if ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        _keel_bootstrap_die "python3 is ${pyver} ($(command -v python3)); Keel needs Python >= ${KEEL_MIN_PYTHON}. Install a newer Python or put one first on PATH."
        return 1
    fi

    # Use the uv on PATH when it is exactly the pinned version.
    local candidate
    if candidate="$(command -v uv 2>/dev/null)" \
        && [ "$(_keel_uv_version "$candidate")" = "$KEEL_UV_VERSION" ]; then
        UV="$candidate"
    else
        local tools="$KEEL_ROOT/.tools"
        if [ ! -x "$tools/bin/uv" ] \
            || [ "$(_keel_uv_version "$tools/bin/uv")" != "$KEEL_UV_VERSION" ]; then
            echo "bootstrap: installing uv ${KEEL_UV_VERSION} into ${tools} (python3 ${pyver})" >&2
            if [ ! -x "$tools/bin/pip" ]; then
                python3 -m venv "$tools" || {
                    _keel_bootstrap_die "'python3 -m venv $tools' failed (on Debian: apt-get install python3-venv)."
                    return 1
                }
            fi
            "$tools/bin/pip" install --disable-pip-version-check --quiet "uv==${KEEL_UV_VERSION}" || {
                _keel_bootstrap_die "could not install uv==${KEEL_UV_VERSION} into $tools."
                return 1
            }
        fi
        UV="$tools/bin/uv"
        if [ "$(_keel_uv_version "$UV")" != "$KEEL_UV_VERSION" ]; then
            _keel_bootstrap_die "$UV does not report version ${KEEL_UV_VERSION}."
            return 1
        fi
    fi
    export UV
    # uv may otherwise try to download a managed Python from GitHub; use the interpreters we have.
    export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"
    echo "bootstrap: using $UV ($("$UV" --version)), python3 ${pyver}" >&2
}

_keel_bootstrap
