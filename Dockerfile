# CHAI Cinematic Prompt Studio.
#
#   docker build -t chai-studio .
#   docker run --gpus all -p 7860:7860 -v hf-cache:/home/studio/.cache/huggingface \
#       -e CHAI_STUDIO_FINETUNED=/weights/chai-wan22 -v /path/to/weights:/weights:ro chai-studio
#
# Base: plain Debian Python. The torch wheels from PyPI carry their own CUDA runtime, cuDNN and
# NCCL, so a CUDA base image would only add gigabytes of a second, unused CUDA. The GPU driver is
# the host's, mounted by the NVIDIA Container Toolkit (`--gpus all`); it must be new enough for the
# CUDA inside the torch wheel (CUDA 13 for torch 2.14: driver 580 or later). With an older driver
# torch sees no GPU and the studio says so loudly in the log and on the page.
# Model weights are not baked in: they download into the Hugging Face cache volume on first use
# (or are mounted read-only).
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False

# libgl1 + libglib2.0-0: scenedetect's OpenCV (the GUI build) loads them at import.
# curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A non-root user runs the app. Every folder it writes is created here and owned by it: the app
# folder (the default tiny-checkpoint folder is relative to it), the model cache, the outputs,
# the tiny checkpoints and Gradio's upload cache.
RUN useradd --create-home --uid 1000 studio
ENV VIRTUAL_ENV=/opt/venv \
    HF_HOME=/home/studio/.cache/huggingface \
    CHAI_STUDIO_OUTPUT_DIR=/home/studio/outputs \
    CHAI_STUDIO_TINY_DIR=/home/studio/.tiny-models \
    GRADIO_TEMP_DIR=/home/studio/.cache/gradio
RUN python -m venv $VIRTUAL_ENV \
    && mkdir -p /app $HF_HOME $CHAI_STUDIO_OUTPUT_DIR $CHAI_STUDIO_TINY_DIR $GRADIO_TEMP_DIR \
    && chown -R studio:studio $VIRTUAL_ENV /app /home/studio
ENV PATH="$VIRTUAL_ENV/bin:$PATH"

USER studio
WORKDIR /app
# constraints.txt pins the versions the tests passed with, so image builds do not drift.
COPY --chown=studio:studio requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt
COPY --chown=studio:studio . .

VOLUME ["/home/studio/.cache/huggingface", "/home/studio/outputs"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7860/ > /dev/null || exit 1

# Inside the container the page must listen on all interfaces; publish the port with -p.
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
