# syntax=docker/dockerfile:1
# The image of the Ray head, workers and submitter of a KubeRay RayJob (k8s/base/sweep): Ray's
# own image for the pinned Ray version, with nbft installed. Build from the repository root:
#   docker build -t REGISTRY/nbft:0.1.0-cu128 .                     # CUDA 12.8 (driver >= 570)
#   docker build --build-arg CUDA=cpu -t REGISTRY/nbft:0.1.0-cpu .     # no GPU (kind, CI)
# CUDA picks both Ray's base image ({Ray version}-{Python}-{CUDA}) and torch's build (from
# download.pytorch.org/whl/{CUDA}), so the two always agree; any cuXYZ that both publish
# works. PyPI's default torch (what `make` installs) is the CUDA 13 build, which needs NVIDIA
# driver 580 or newer, hence the image's default of cu128.
# RAY_VERSION must match the ray==... pin in pyproject.toml and spec.rayClusterSpec.rayVersion
# in k8s/base/sweep/rayjob.yaml.
ARG RAY_VERSION=2.60.0
ARG PYTHON_TAG=py311
ARG CUDA=cu128
FROM rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-${CUDA}
ARG CUDA

# The image's non-root user (uid 1000, group users), owner of its Python environment.
USER ray
WORKDIR /home/ray/nbft

# 1. Dependencies, pinned by constraints.txt (the lock `make` and CI install too). This layer
# depends on these two files only, so a code change reuses it (several GB with CUDA).
COPY --chown=ray:users pyproject.toml constraints.txt ./
RUN python - <<'EOF' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
EOF
RUN pip install --no-cache-dir --extra-index-url "https://download.pytorch.org/whl/${CUDA}" \
        -c constraints.txt -r /tmp/requirements.txt \
    && python -c "import torch, torchvision; print(torch.__version__, torch.version.cuda)"

# 2. The code: a small layer on top, no dependency resolved again.
COPY --chown=ray:users README.md ./
COPY --chown=ray:users nonbinary_ft ./nonbinary_ft
RUN pip install --no-cache-dir --no-deps . \
    && nbft --help > /dev/null

# Ready sweep files and search spaces, for `nbft sweep sweeps/...` inside the image.
COPY --chown=ray:users sweeps ./sweeps
COPY --chown=ray:users search_spaces ./search_spaces

ENV PYTHONUNBUFFERED=1
WORKDIR /home/ray
