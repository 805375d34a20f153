#!/bin/sh
# deps-debian.sh - THE list of Debian packages berth needs to build, test and lint.
# CI (.ci/run) and humans run this same file. Idempotent; needs root (or sudo).
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	build-essential pkg-config make \
	libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libcmocka-dev \
	sqlite3 curl ca-certificates clang-format \
	skopeo podman faketime docker-registry openssl e2fsprogs \
	python3 >/dev/null
# The integration tests drive berth with boto3 and the AWS CLI from the default python3.
# Debian's python3-boto3 is too old for some ECR operations; use it only as a fallback.
if ! python3 -c 'import boto3, requests' 2>/dev/null; then
	$SUDO apt-get install -y -qq --no-install-recommends python3-boto3 python3-requests \
		awscli >/dev/null
fi
echo "deps-debian: ok"
