# promtool (metric exposition lint) and the prometheus server (end-to-end scrape test),
# from Debian's "prometheus" package.  The service it would start is irrelevant: tests
# run their own server on loopback with a temporary config and storage directory.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  say "installing Debian's prometheus package (promtool and the server)"
  # Without an init system (containers, CI) the package's own service does not start.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends prometheus >&2
fi
