#!/usr/bin/env bash
# Set up (first time only) and start the app at http://127.0.0.1:7860 on the embedded model.
# Extra arguments go to app.py, e.g.: bash scripts/run.sh --quant none --port 7861
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
exec .venv/bin/python app.py "$@"
