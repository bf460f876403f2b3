# PostgreSQL server binaries for the tests that run Airflow's metadata database on it
# (tests/support/postgres.py starts a private cluster with initdb/pg_ctl, as user postgres
# when run as root). Debian's package; its system service must not be left running.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "installing postgresql (Debian package)"
  apt_log=$(mktemp)
  # Keep the package's maintainer scripts from starting the system cluster (policy-rc.d 101).
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
    say "could not install postgresql"
    return 1
  fi
  rm -f "$apt_log"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
# Whether installed now or earlier, the tests need no system cluster: stop any that runs.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
    case "$status" in
      online*) say "stopping the system PostgreSQL cluster $ver/$name"; pg_ctlcluster "$ver" "$name" stop >&2 || true ;;
    esac
  done
fi
