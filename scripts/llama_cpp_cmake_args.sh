#!/usr/bin/env bash
# Print portable CMake flags for building llama-cpp-python on this CPU (read by scripts/setup.sh).
#
# GGML_NATIVE would compile for every instruction the CPU reports, and once built AMX kernels
# that died with SIGILL inside a VM whose CPU reported AMX it could not use. So: native off,
# AMX off, and each x86 extension switched on only when /proc/cpuinfo lists it.
#   CMAKE_ARGS="$(bash scripts/llama_cpp_cmake_args.sh)" pip install llama-cpp-python
set -euo pipefail
args="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
if [[ "$(uname -m)" == x86_64 && -r /proc/cpuinfo ]]; then
    cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    has() { [[ "$cpu_flags" == *" $1 "* ]]; }
    for pair in avx2:AVX2 fma:FMA f16c:F16C avx512f:AVX512 avx512vbmi:AVX512_VBMI \
                avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVXVNNI; do
        if has "${pair%%:*}"; then args+=" -DGGML_${pair##*:}=ON"; else args+=" -DGGML_${pair##*:}=OFF"; fi
    done
    args+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
fi
echo "$args"
