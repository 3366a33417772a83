#!/usr/bin/env bash
# scripts/readme-usage.sh: rewrite README's "## Command reference" block with the CLI's own
# usage (TestReadmeUsage in cmd/ramboot checks they are equal).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/ramboot; trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/ramboot
usage=$("$bin" 2>&1 >/dev/null | grep -v '^ramboot: usage' || true)
USAGE=$usage python3 - <<'PY'
import os, re
s = open("README.md").read()
head, sep, rest = s.partition("## Command reference")
pre, fence, body = rest.partition("```\n")
_, fence2, tail = body.partition("```")
open("README.md", "w").write(head + sep + pre + fence + os.environ["USAGE"] + "\n" + fence2 + tail)
PY
