# syntax=docker/dockerfile:1
# The image of the Ray head, workers and submitter of a KubeRay RayJob (k8s/base/sweep): Ray's
# own GPU image for the pinned Ray version, with nbft installed. Build from the repository root:
#   docker build -t REGISTRY/nbft:0.1.0 .
# Tags of rayproject/ray are {Ray version}-{Python version}-{platform}; "-gpu" is the CUDA
# build that Ray's docs recommend for GPU nodes. RAY_VERSION must match the ray==... pin in
# pyproject.toml and spec.rayClusterSpec.rayVersion in k8s/base/sweep/rayjob.yaml.
ARG RAY_VERSION=2.60.0
ARG PYTHON_TAG=py311
FROM rayproject/ray:${RAY_VERSION}-${PYTHON_TAG}-gpu

# The image's non-root user (uid 1000, group users), owner of its Python environment.
USER ray
WORKDIR /home/ray/nbft

# Dependencies first: they change less often than the code, so this layer is cached.
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users nonbinary_ft ./nonbinary_ft
RUN pip install --no-cache-dir . \
    && nbft --help > /dev/null

# Ready sweep files and search spaces, for `nbft sweep sweeps/...` inside the image.
COPY --chown=ray:users sweeps ./sweeps
COPY --chown=ray:users search_spaces ./search_spaces

ENV PYTHONUNBUFFERED=1
WORKDIR /home/ray
