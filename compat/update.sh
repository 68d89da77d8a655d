#!/usr/bin/env bash
# Regenerates the compat modfiles, the two ends of the PocketBase range the
# plugin is built and tested against besides go.mod's own version:
#
# compat/pocketbase-v0.35.mod (and .sum): the module's direct dependencies
# with PocketBase pinned to v0.35.0 and every indirect dependency at the
# version v0.35.0 itself asks for, so that the build against it is what a
# fork at v0.35 would see.
#
# compat/pocketbase-v0.40.mod (and .sum): go.mod with PocketBase raised to
# the newest release, v0.40.4, which needs Go 1.27: the go command fetches
# go1.27.3 from the module proxy (make test-compat sets GOTOOLCHAIN).
set -euo pipefail
cd "$(dirname "$0")/.."
mod=compat/pocketbase-v0.35.mod
{
  echo "module github.com/processman/processman"
  echo
  echo "go 1.25.0"
  echo
  echo "require ("
  go list -m -f '{{if not .Indirect}}{{if not .Main}}	{{.Path}} {{.Version}}{{end}}{{end}}' all |
    sed 's#\(github.com/pocketbase/pocketbase\) .*#\1 v0.35.0#'
  echo ")"
} > "$mod"
rm -f compat/pocketbase-v0.35.sum
go mod tidy -modfile="$mod"

newest=compat/pocketbase-v0.40.mod
cp go.mod "$newest"
cp go.sum "${newest%.mod}.sum"
export GOTOOLCHAIN=go1.27.3
go get -modfile="$newest" github.com/pocketbase/pocketbase@v0.40.4 toolchain@go1.27.3
# v0.40.4 asks for mimetype v1.4.15, which its author retracted.
go get -modfile="$newest" github.com/gabriel-vasile/mimetype@v1.4.16
go mod tidy -modfile="$newest"
