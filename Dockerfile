# The `risk-scoring` image that deploy/compose.yaml and the Helm values run: the pinned stack
# (requirements.lock, installed without resolution) and this code, nothing else.
#   make image    # docker build --build-arg RISK_CODE_VERSION=<git sha> -t risk-scoring:<version> .
# The code version is a build argument because the image carries no .git: lineage records it.
FROM python:3.11.7-slim-bookworm

ARG RISK_CODE_VERSION
RUN test -n "$RISK_CODE_VERSION" || { echo "build with --build-arg RISK_CODE_VERSION=\$(git rev-parse --short=12 HEAD) (make image does)" >&2; exit 1; }
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RISK_ENV=production RISK_CODE_VERSION=$RISK_CODE_VERSION DAGSTER_HOME=/opt/dagster/home

WORKDIR /opt/risk-scoring
COPY requirements.lock ./
RUN pip install --no-cache-dir --no-deps -r requirements.lock
COPY pyproject.toml ./
COPY riskcore riskcore
COPY pipelines pipelines
COPY assets assets
COPY checks checks
COPY resources resources
RUN pip install --no-cache-dir --no-deps . \
 && useradd --system --uid 10001 --home-dir /opt/dagster risk \
 && mkdir -p /opt/dagster/home /data && chown -R risk /opt/dagster /data

LABEL org.opencontainers.image.title="risk-scoring" org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision=$RISK_CODE_VERSION
USER 10001
# webserver, code server (compose; 3030 in the chart), MLflow server
EXPOSE 3000 4266 3030 5000
CMD ["dagster", "api", "grpc", "-m", "pipelines.definitions", "-h", "0.0.0.0", "-p", "3030"]
