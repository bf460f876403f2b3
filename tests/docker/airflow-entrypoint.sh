#!/bin/sh
# The stand-in's /entrypoint, like the official image's: an Airflow subcommand
# (`db migrate`, `scheduler`...) runs as `airflow <args>`; a shell, Python, `airflow` itself
# or an absolute path runs as given.
set -eu
case "${1:-}" in
  "") exec airflow --help ;;
  bash | sh | python | python3 | airflow | /*) exec "$@" ;;
  *) exec airflow "$@" ;;
esac
