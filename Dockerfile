# The Lazarus operator image. Built by users with a container engine, and on the project's
# machines by buildah from this file unchanged (`make operator-image`, FROM a local Python base;
# tests/unit/test_image.py checks what can be checked without building).
#
#   docker build -t lazarus:0.1.0 .
#
# Pin the base image by digest for reproducible builds (`python:3.11-slim-bookworm@sha256:...`).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: a virtualenv in /opt/lazarus (the same path in both stages, so its scripts work)
# with exactly the pinned runtime dependencies (manifests/image/requirements.lock, `make lock`) and the package.
# Every dependency ships a binary wheel for this platform, so no compiler is needed even here.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv --without-pip /opt/lazarus
COPY manifests/image/requirements.lock ./
RUN pip --python /opt/lazarus/bin/python install --no-deps --only-binary=:all: -r requirements.lock
COPY pyproject.toml setup.cfg README.md ./
COPY lazarus ./lazarus
RUN pip --python /opt/lazarus/bin/python install --no-deps . \
    && pip --python /opt/lazarus/bin/python check

# Final stage: the interpreter and the virtualenv; no pip in the virtualenv, no build tools, no
# sources. Runs as a fixed non-root UID (the Deployment's runAsUser must match).
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 65532 lazarus \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin lazarus
COPY --from=build /opt/lazarus /opt/lazarus
ENV PATH=/opt/lazarus/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
# /metrics, /healthz and /readyz (Settings.metrics_port).
EXPOSE 8080
ENTRYPOINT ["lazarus"]
CMD ["run"]
