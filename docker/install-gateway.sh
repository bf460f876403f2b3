#!/bin/sh
# Installs the gateway into its own virtualenv: the one install step of the Dockerfile,
# also run by CI outside Docker (tests/e2e/test_packaging.py) so the image stays honest.
#   usage: install-gateway.sh VENV SOURCE_DIR [PYTHON]
set -eu
# The official Airflow image sets PIP_USER=true (installs go to ~/.local), which pip
# refuses inside a virtualenv; this venv is the gateway's own, so switch it off here.
export PIP_USER=0
venv=$1
src=$2
python=${3:-python3}
# A CA bundle for pip behind a TLS-inspecting proxy, if the build context has one.
if [ -f "$src/docker/build-ca.crt" ]; then
  export PIP_CERT="$src/docker/build-ca.crt"
fi
"$python" -m venv "$venv"
# Exact pins from the same constraints file as development and CI.
"$venv/bin/pip" install --no-cache-dir --disable-pip-version-check --no-compile \
  -c "$src/constraints/gateway.txt" "$src"
"$venv/bin/pip" check --disable-pip-version-check
"$venv/bin/python" -m compileall -q "$venv/lib"
# The package must import from the venv alone, with nothing from the source tree.
cd /
"$venv/bin/python" -c "import gateway.app, gateway.http.proxy, gateway.http.health"
