#!/usr/bin/env bash
# One command from a fresh clone to the running demo: set-up, build, serve on localhost.
source "$(dirname "$0")/common.sh"
bash scripts/setup.sh
bash scripts/build.sh
step "serving the demo (Ctrl-C stops)"
exec node scripts/serve.mjs --port "${PORT:-8080}"
