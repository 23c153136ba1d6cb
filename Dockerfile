# CHAI Cinematic Prompt Studio on a CUDA machine.
#
#   docker build -t chai-studio .
#   docker run --gpus all -p 7860:7860 -v hf-cache:/home/studio/.cache/huggingface \
#       -e CHAI_STUDIO_FINETUNED=/weights/chai-wan22 -v /path/to/weights:/weights:ro chai-studio
#
# The CUDA runtime base provides the driver-facing libraries; torch brings its own CUDA user-space
# libraries from PyPI (CUDA 13.0 for torch 2.14), so the host driver must support CUDA 13 (580+). Model weights are not baked in: they download into the Hugging Face cache
# volume on first use (or are mounted read-only).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip ffmpeg curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A non-root user owns the app, the outputs and the model cache. Ubuntu 24.04 images ship a user
# "ubuntu" with uid 1000; it is replaced so the studio user gets the conventional uid 1000.
RUN (userdel --remove ubuntu 2>/dev/null || true) && useradd --create-home --uid 1000 studio
ENV VIRTUAL_ENV=/opt/venv \
    HF_HOME=/home/studio/.cache/huggingface \
    CHAI_STUDIO_OUTPUT_DIR=/home/studio/outputs
RUN python3 -m venv $VIRTUAL_ENV && chown -R studio:studio $VIRTUAL_ENV
ENV PATH="$VIRTUAL_ENV/bin:$PATH"

WORKDIR /app
COPY --chown=studio:studio requirements.txt ./
USER studio
RUN pip install -r requirements.txt
COPY --chown=studio:studio . .
RUN mkdir -p $HF_HOME $CHAI_STUDIO_OUTPUT_DIR

VOLUME ["/home/studio/.cache/huggingface", "/home/studio/outputs"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:7860/ > /dev/null || exit 1

# Inside the container the page must listen on all interfaces; publish the port with -p.
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
