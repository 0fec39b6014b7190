#!/usr/bin/env bash
# tests/chat/npm-setup.sh - make puppeteer-core (pinned in package.json /
# package-lock.json beside this script) available and print the
# node_modules directory to use as NODE_PATH (tests/conformance/npm-setup.sh
# does the work: tests/chat/node_modules, or $TOP_BUILDDIR/tests/chat/npm
# when the source tree is read-only). No browser is downloaded
# (PUPPETEER_SKIP_DOWNLOAD): the test drives the system's chromium.
HERE=$(cd "$(dirname "$0")" && pwd)
PUPPETEER_SKIP_DOWNLOAD=1 exec bash "$HERE/../conformance/npm-setup.sh" "$HERE" puppeteer-core
