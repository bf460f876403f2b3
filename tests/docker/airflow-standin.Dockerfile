# A stand-in for the official Airflow image (no registry is reachable where the tests run):
# Debian bookworm from a local `debootstrap --variant=minbase` import, Python 3.11, and
# Airflow installed for the `airflow` user (uid 50000, gid 0) under ~/.local with
# PIP_USER=true, `airflow` on PATH, dumb-init and curl, the PostgreSQL drivers, the
# dags/logs folders and an /entrypoint that runs Airflow subcommands, as in apache/airflow.
# Build context: constraints/airflow-<ver>.txt, airflow-postgres.txt, airflow-entrypoint.sh,
# and build-ca.crt (the host's CA bundle for pip behind a TLS-inspecting proxy; only the
# build stage sees it).
ARG DEBIAN_BASE=debian:bookworm-slim

FROM ${DEBIAN_BASE} AS airflow-build
ARG AIRFLOW_VERSION=3.3.2
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3=3.11.* python3-pip=23.* ca-certificates=* \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 50000 --gid 0 --create-home --home-dir /home/airflow airflow
USER 50000:0
WORKDIR /home/airflow
COPY constraints/ /tmp/constraints/
COPY build-ca.crt /tmp/build-ca.crt
# Debian marks its Python externally managed; --user installs into ~/.local are what the
# official image does, so allow them for this user.
RUN PIP_CERT=/tmp/build-ca.crt pip install --user --no-cache-dir --no-compile --break-system-packages \
      --disable-pip-version-check -c "/tmp/constraints/airflow-${AIRFLOW_VERSION}.txt" \
      "apache-airflow==${AIRFLOW_VERSION}"
# The metadata database on PostgreSQL (deploy/compose.yaml): psycopg2, and asyncpg for the
# api-server's async engine (the official image has both).
COPY airflow-postgres.txt /tmp/airflow-postgres.txt
RUN PIP_CERT=/tmp/build-ca.crt pip install --user --no-cache-dir --no-compile --break-system-packages \
      --disable-pip-version-check --no-deps -r /tmp/airflow-postgres.txt

FROM ${DEBIAN_BASE}
SHELL ["/bin/sh", "-eu", "-c"]
COPY airflow-entrypoint.sh /entrypoint
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3=3.11.* python3-venv=3.11.* dumb-init=* curl=* ca-certificates=* \
 && rm -rf /var/lib/apt/lists/* \
 && chmod 0755 /entrypoint \
 && useradd --uid 50000 --gid 0 --create-home --home-dir /home/airflow airflow \
 && install -d -o 50000 -g 0 /opt/airflow /opt/airflow/dags /opt/airflow/logs
COPY --from=airflow-build --chown=50000:0 /home/airflow/.local /home/airflow/.local
ENV PATH=/home/airflow/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AIRFLOW_HOME=/opt/airflow \
    PIP_USER=true \
    LANG=C.UTF-8
USER 50000:0
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
