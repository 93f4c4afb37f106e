#!/bin/sh
# The app's acceptance command: the page a user lands on ships in the image.
set -eu
cd "$(dirname "$0")/.."
test -s www/index.html || { echo "uat_index_page FAILED: www/index.html is missing" >&2; exit 1; }
echo "uat_index_page ok"
grep -q '^COPY www /www' Dockerfile || { echo "uat_pages_are_copied FAILED: Dockerfile does not copy www/" >&2; exit 1; }
echo "uat_pages_are_copied ok"
