#!/usr/bin/env bash
# Debian's Chromium for the report's browser test and screenshots (scripts/lib/report/browser.py), driven through
# Playwright with executable_path=/usr/bin/chromium: never `playwright install`. Needs root and Debian's mirror.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
