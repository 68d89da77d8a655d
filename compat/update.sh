#!/usr/bin/env bash
# Regenerates compat/pocketbase-v0.35.mod (and .sum): the module's direct
# dependencies with PocketBase pinned to v0.35.0 and every indirect
# dependency at the version v0.35.0 itself asks for, so that the build
# against it is what a fork at v0.35 would see. Its go line is the lowest
# the direct dependencies allow (golang.org/x/sys and x/text need 1.26), not
# go.mod's 1.27, which PocketBase v0.40 needs and v0.35 does not.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=compat/pocketbase-v0.35.mod
{
  echo "module github.com/processman/processman"
  echo
  echo "go 1.26.0"
  echo
  echo "require ("
  go list -m -f '{{if not .Indirect}}{{if not .Main}}	{{.Path}} {{.Version}}{{end}}{{end}}' all |
    sed 's#\(github.com/pocketbase/pocketbase\) .*#\1 v0.35.0#'
  echo ")"
} > "$mod"
rm -f compat/pocketbase-v0.35.sum
go mod tidy -modfile="$mod"
