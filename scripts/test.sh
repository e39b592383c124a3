#!/usr/bin/env bash
# The README's test command: vet, every test (real FUSE mounts included),
# the race detector on the packages with goroutines, and the end-to-end
# tests against a binary built with the race detector, so that the mount's
# own goroutines (upload pipeline, heartbeat, group refresh, sweep) run
# under it too.
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
go build -o fdfsfs .
# Everything but the end-to-end tests, then those with a -race binary.
go test -count=1 -timeout 20m $(go list ./... | grep -v '^fdfsfs/test$')
go test -count=1 -race -timeout 20m ./fdfs/... ./cache/... ./index/... ./fs/... ./internal/...
FDFSFS_E2E_RACE=1 go test -count=1 -timeout 20m ./test/
# The README's memory figure holds for a plain build: the load test once
# more against one.
go test -count=1 -timeout 10m -run '^TestFaultLoad$' ./test/
