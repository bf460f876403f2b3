# A Docker engine and debootstrap for the image tests (tests/e2e/test_docker_image.py): the
# tests start their own dockerd on a private socket; the package's service is not wanted.
# docker-compose (1.29) validates deploy/compose.yaml (tests/unit/test_deploy_manifests.py) and brings
# it up on the tests' engine (tests/e2e/test_compose_stack.py).
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1 ||
   ! command -v docker-compose >/dev/null 2>&1; then
  say "installing docker.io, debootstrap and docker-compose (Debian packages)"
  apt_log=$(mktemp)
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # keep maintainer scripts from starting dockerd
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap docker-compose
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    say "could not install docker.io / debootstrap / docker-compose (the image tests will skip)"
    return 0
  fi
  rm -f "$apt_log"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
