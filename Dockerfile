# airflow-gateway in front of Airflow, with the Airflow CLI it drives in the same image.
# Base: the official Airflow image (its Airflow, its `airflow` on PATH); the gateway lives
# in its own virtualenv under /opt/gateway so neither dependency set can break the other.
# Build: docker build -t airflow-gateway .   (see docs/deployment.md; no secrets at build time)
#   --build-arg BASE_IMAGE=...   another Airflow image (same layout: uid 50000, dumb-init)
#   docker/build-ca.crt          optional CA bundle for pip behind a TLS-inspecting proxy;
#                                only the builder stage sees it, the final image never does.
ARG BASE_IMAGE=apache/airflow:3.3.2-python3.12

FROM ${BASE_IMAGE} AS builder
USER 0
RUN ["/usr/bin/install", "-d", "-o", "50000", "-g", "0", "/opt/gateway", "/build"]
# The build itself runs unprivileged too (50000 is the image's `airflow` user).
USER 50000:0
WORKDIR /build
# Dependencies and code together: the package is small, the pins come from constraints.
COPY pyproject.toml README.md ./
COPY constraints/gateway.txt ./constraints/gateway.txt
COPY gateway ./gateway
# The [t] glob makes the CA file optional (the classic builder skips a glob that matches nothing).
COPY docker/install-gateway.sh docker/build-ca.cr[t] ./docker/
RUN ["/bin/sh", "docker/install-gateway.sh", "/opt/gateway/venv", "/build", "python3"]

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="airflow-gateway" \
      org.opencontainers.image.description="Security front door for Apache Airflow" \
      org.opencontainers.image.licenses="Apache-2.0"
# COPY leaves the files owned by root: read-only for the runtime user.  Only the venv
# crosses from the builder: no sources, no CA file, no pip cache.
COPY --from=builder /opt/gateway/venv /opt/gateway/venv
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_BIND=0.0.0.0:8080 \
    AIRFLOW_GATEWAY__GATEWAY__STATE_DIR=/tmp/airflow-gateway
WORKDIR /opt/gateway
# The official image's unprivileged `airflow` user; never root at run time.
USER 50000:0
EXPOSE 8080
# Liveness without curl: the gateway answers /healthz itself, without calling Airflow; the
# probe follows GATEWAY_BIND.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/opt/gateway/venv/bin/python", "-m", "gateway.entry.healthcheck"]
# dumb-init (shipped by the Airflow image) forwards SIGTERM to gunicorn for a graceful
# stop and reaps the Airflow CLI's orphans; it replaces Airflow's own entrypoint, which
# would treat the command as an `airflow` subcommand.  `serve` validates the configuration
# and execs gunicorn with the settings shipped in the package (gateway/entry/gunicorn_conf.py).
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["/opt/gateway/venv/bin/airflow-gateway", "serve"]
