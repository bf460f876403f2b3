# A stand-in for the official redis image (no registry is reachable where the tests run):
# Debian bookworm's redis-server (7.0) on the local minbase import, run as `redis` in /data,
# answering on every address without protected mode as the official image does; redis-cli
# on PATH for the healthcheck.
ARG DEBIAN_BASE=debian:bookworm-slim
FROM ${DEBIAN_BASE}
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server=* \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o redis -g redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data"]
