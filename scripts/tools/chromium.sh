#!/usr/bin/env bash
# Debian's Chromium for the report's browser test and screenshots (scripts/lib/report/browser.py), driven through
# Playwright with executable_path=/usr/bin/chromium: never `playwright install`. Needs root and Debian's mirror.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
exec 9>/var/lock/aloe-apt.lock && flock 9  # one apt at a time: a test on the other core may be installing Slurm
[ -x /usr/bin/chromium ] && exit 0  # installed meanwhile
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium
/usr/bin/chromium --version
