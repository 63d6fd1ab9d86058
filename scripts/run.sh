#!/usr/bin/env bash
# Sets up what is missing (scripts/setup.sh), then runs a deno task: the quick start is
# `bash scripts/run.sh train --preset fashion-mnist-quick` (README); also `bash scripts/run.sh train`,
# `bash scripts/run.sh test`, `bash scripts/run.sh eval -- --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
task="${1:-train}"
shift || true
exec deno task "$task" "$@"
