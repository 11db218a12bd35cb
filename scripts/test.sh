#!/usr/bin/env bash
# Set up (first time only), make sure headless Chromium is there, and run the test suite.
# Extra arguments go to pytest, e.g.: bash scripts/test.sh -m "not real and not browser"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
if ! command -v chromium >/dev/null; then
    if [[ $(id -u) == 0 ]]; then
        (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium" >&2
    else
        echo "Browser tests need Debian's chromium: sudo apt-get install chromium" >&2
    fi
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
