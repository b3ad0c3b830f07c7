#!/usr/bin/env bash
# Creates (once) a Python virtual environment with the official OpenAI, Anthropic and Ollama
# client libraries, pinned, and prints its python's path. The compatibility tests drive the
# server with these real clients. Usage: scripts/python-clients.sh [DIR]
# (default ~/.cache/rollama/venv). Needs python3 with venv and pip, and PyPI.
set -euo pipefail

dir="${1:-$HOME/.cache/rollama/venv}"
requirements="openai==3.57.0 anthropic==2.14.0 ollama==0.6.3"
stamp="$dir/.rollama-requirements"

if [ ! -x "$dir/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$requirements" ]; then
    echo "creating $dir with $requirements..." >&2
    rm -rf "$dir"
    python3 -m venv "$dir"
    # shellcheck disable=SC2086
    "$dir/bin/pip" install --quiet --disable-pip-version-check $requirements >&2
    echo "$requirements" > "$stamp"
fi
echo "$dir/bin/python"
