#!/bin/sh
# The app's test command: the release inputs are well formed.
set -eu
cd "$(dirname "$0")/.."
version=$(cat VERSION)
echo "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$' || {
    echo "test_version_is_semver FAILED: VERSION is '$version'" >&2
    exit 1
}
echo "test_version_is_semver ok"
grep -q '^ENTRYPOINT' Dockerfile || { echo "test_dockerfile_has_entrypoint FAILED" >&2; exit 1; }
echo "test_dockerfile_has_entrypoint ok"
