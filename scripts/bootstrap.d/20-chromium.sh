# Headless Chromium and its WebDriver for the admin page's browser tests (tests/e2e/test_page_browser.py).
# Debian's packages, because browser downloads (Playwright's, Selenium Manager's) cannot work offline.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  say "installing chromium and chromium-driver (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi
