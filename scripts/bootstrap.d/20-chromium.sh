# Headless Chromium and its WebDriver for the admin page's browser tests (tests/e2e/test_page_browser.py).
# Debian's packages, because browser downloads (Playwright's, Selenium Manager's) cannot work offline.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  say "installing chromium and chromium-driver (Debian packages, about a minute)"
  apt_log=$(mktemp)
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
       } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    rm -f "$apt_log"
    say "could not install chromium / chromium-driver"
    return 1
  fi
  rm -f "$apt_log"
fi
