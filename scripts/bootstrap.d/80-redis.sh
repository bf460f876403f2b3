# redis-server, the shared rate-limit store of tests/e2e/test_rate_limits.py (which starts
# its own server on loopback in a temporary directory). Debian's package; its system
# service must not be left running.
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server (Debian package)"
  apt_log=$(mktemp)
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    say "could not install redis-server"
    return 1
  fi
  rm -f "$apt_log"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
