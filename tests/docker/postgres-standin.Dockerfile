# A stand-in for the official postgres image (no registry is reachable where the tests run):
# Debian bookworm's PostgreSQL 15 on the local minbase import, with an entrypoint that does
# what deploy/compose.yaml relies on in the official one: on an empty data directory
# (PGDATA=/var/lib/postgresql/data) initdb with POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql once, then serve on every address with
# password (scram-sha-256) authentication; pg_isready on PATH for the healthcheck.
# Build context: postgres-entrypoint.sh.
ARG DEBIAN_BASE=debian:bookworm-slim
FROM ${DEBIAN_BASE}
SHELL ["/bin/sh", "-eu", "-c"]
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# No cluster from the package: the entrypoint makes one in the volume.
RUN install -d /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15=* \
 && rm -rf /var/lib/apt/lists/* \
 && chmod 0755 /usr/local/bin/docker-entrypoint.sh \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres -m 2775 /var/run/postgresql /docker-entrypoint-initdb.d
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
USER postgres
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
