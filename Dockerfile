# The `risk-scoring` image that deploy/compose.yaml and the Helm values run: the pinned stack
# (requirements.lock, installed without resolution) and this code, nothing else.
#   make image                                        # FROM the official python slim image
#   make base-image image BASE_IMAGE=risk-base:bookworm   # no registry: a debootstrapped Debian base
# Any base with python3 (and its venv module) will do: the stack goes into a venv at /opt/venv.
# Behind a TLS-inspecting proxy, pass its CA bundle as a BuildKit secret (make image CA_BUNDLE=...):
# it is mounted only for the RUNs that download (the second fetches setuptools to build
# this project) and is in no layer of the image.
# The code version is a build argument because the image carries no .git: lineage records it.
ARG BASE_IMAGE=python:3.11.7-slim-bookworm
FROM ${BASE_IMAGE}

ARG RISK_CODE_VERSION
RUN test -n "$RISK_CODE_VERSION" || { echo "build with --build-arg RISK_CODE_VERSION=\$(git rev-parse --short=12 HEAD) (make image does)" >&2; exit 1; }
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    RISK_ENV=production RISK_CODE_VERSION=$RISK_CODE_VERSION DAGSTER_HOME=/opt/dagster/home \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH

WORKDIR /opt/risk-scoring
COPY requirements.lock ./
# uv installs the lock: the same pinned wheels, fetched side by side and byte-compiled on every
# core (pip took 5 to 10 minutes here, one package at a time); it is removed again afterwards.
ARG UV_VERSION=0.13.8
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi \
 && python3 -m venv /opt/venv \
 && pip install --no-cache-dir "uv==$UV_VERSION" \
 && uv pip install --no-cache --no-deps --compile-bytecode -r requirements.lock \
 && pip uninstall --yes uv
COPY pyproject.toml ./
COPY riskcore riskcore
COPY pipelines pipelines
COPY assets assets
COPY checks checks
COPY resources resources
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && pip install --no-cache-dir --no-deps . \
 && useradd --system --uid 10001 --home-dir /opt/dagster risk \
 && mkdir -p /opt/dagster/home /data && chown -R risk /opt/dagster /data

LABEL org.opencontainers.image.title="risk-scoring" org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision=$RISK_CODE_VERSION
USER 10001
# webserver, code server (compose; 3030 in the chart), MLflow server
EXPOSE 3000 4266 3030 5000
CMD ["dagster", "api", "grpc", "-m", "pipelines.definitions", "-h", "0.0.0.0", "-p", "3030"]
