# airflow-gateway in front of Airflow, with the Airflow CLI it drives in the same image.
# Base: the official Airflow image (its Airflow, its `airflow` on PATH); the gateway lives
# in its own virtualenv under /opt/gateway so neither dependency set can break the other.
# Build: docker build -t airflow-gateway .   (see docs/proxy.md; no secrets at build time)

FROM apache/airflow:3.3.2-python3.12 AS builder
USER 0
RUN ["/usr/bin/install", "-d", "-o", "50000", "-g", "0", "/opt/gateway", "/build"]
# The build itself runs unprivileged too (50000 is the image's `airflow` user).
USER 50000:0
WORKDIR /build
# Dependencies and code together: the package is small, the pins come from constraints.
COPY pyproject.toml ./
COPY constraints/gateway.txt ./constraints/gateway.txt
COPY gateway ./gateway
COPY docker/install-gateway.sh ./docker/install-gateway.sh
RUN ["/bin/sh", "docker/install-gateway.sh", "/opt/gateway/venv", "/build", "python3"]

FROM apache/airflow:3.3.2-python3.12
LABEL org.opencontainers.image.title="airflow-gateway" \
      org.opencontainers.image.description="Security front door for Apache Airflow" \
      org.opencontainers.image.licenses="Apache-2.0"
# COPY leaves the files owned by root: read-only for the runtime user.
COPY --from=builder /opt/gateway/venv /opt/gateway/venv
COPY gunicorn.conf.py /opt/gateway/gunicorn.conf.py
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_BIND=0.0.0.0:8080 \
    AIRFLOW_GATEWAY__GATEWAY__STATE_DIR=/tmp/airflow-gateway
WORKDIR /opt/gateway
# The official image's unprivileged `airflow` user; never root at run time.
USER 50000:0
EXPOSE 8080
# Liveness without curl: the gateway answers /healthz itself, without calling Airflow.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/opt/gateway/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
# dumb-init (shipped by the Airflow image) forwards SIGTERM to gunicorn for a graceful
# stop and reaps the Airflow CLI's orphans; it replaces Airflow's own entrypoint, which
# would treat the command as an `airflow` subcommand.
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["/opt/gateway/venv/bin/gunicorn", "-c", "/opt/gateway/gunicorn.conf.py"]
