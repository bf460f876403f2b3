# panva's oidc-provider (npm), the real OpenID provider the sign-on tests run on loopback
# (tests/oidc/provider.mjs, started by tests/support/oidc.py).  Pinned by tests/oidc's
# package-lock.json; installed with `npm ci` into the cache, one directory per lock file
# content, shared between checkouts like the Airflow virtualenvs.  Major 8, because
# Debian's nodejs is 20 ("Iron"): oidc-provider 9 supports Node 22 LTS and later only.
# tests/support/oidc.py finds the directory by the same stamp (or
# AIRFLOW_GATEWAY_TEST_OIDC_PROVIDER).
oidc_dir="$cache/oidc-provider-$(stamp_of tests/oidc/package.json tests/oidc/package-lock.json)"
if [ ! -f "$oidc_dir/.complete" ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "installing nodejs and npm (Debian packages)"
    apt_log=$(mktemp)
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
         } >"$apt_log" 2>&1; then
      cat "$apt_log" >&2
      rm -f "$apt_log"
      say "could not install nodejs / npm"
      return 1
    fi
    rm -f "$apt_log"
  fi
  (
    flock 9
    if [ ! -f "$oidc_dir/.complete" ]; then
      say "installing oidc-provider into $oidc_dir (npm ci)"
      rm -rf "$oidc_dir"
      mkdir -p "$oidc_dir"
      cp tests/oidc/package.json tests/oidc/package-lock.json "$oidc_dir/"
      # No install scripts: oidc-provider and its dependencies are plain JavaScript.
      if ! (cd "$oidc_dir" && timeout 600 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2; then
        rm -rf "$oidc_dir"
        say "npm ci of oidc-provider failed"
        exit 1
      fi
      touch "$oidc_dir/.complete"
    fi
  ) 9>"$cache/.lock-oidc-provider" || return 1
fi
