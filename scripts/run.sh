#!/usr/bin/env bash
# Set up (first time) and start the chat, widget and HTTP API on the embedded defaults: http://127.0.0.1:7860/
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh run
exec assistant serve "$@"
