# nginx, the round-robin balancer in front of two gateway instances in
# tests/e2e/test_multi_instance.py (which runs its own nginx on loopback with a private
# config); the package's service is not wanted.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  say "installing nginx-light (Debian package)"
  apt_log=$(mktemp)
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    say "could not install nginx-light"
    return 1
  fi
  rm -f "$apt_log"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
