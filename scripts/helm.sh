#!/usr/bin/env bash
# Builds (once per version) the real `helm` the chart tests use, from the Go module helm.sh/helm/vN
# through the Go module proxy, like scripts/control-plane.sh builds the control plane.
#
# Prints the helm binary's path on its last line of stdout; progress and errors go to stderr.
#
# - DEMOMAIL_HELM_VERSION: default below (v3); v4.x builds helm.sh/helm/v4.
# - HELM (v3) / HELM4 (v4) set: that binary is used as it is (must be executable); nothing is built.
# - Cache: ${DEMOMAIL_CACHE:-~/.cache/demomail}/helm/<version>/helm ; delete it to rebuild.
# - `--check`: build nothing; exit 3 (saying so) when a build would be needed.
# - Concurrent runs (tap runs test files in parallel) wait on a lock instead of building twice.
# About 2 minutes on 2 cores with a warm Go module cache.
set -euo pipefail

version="${DEMOMAIL_HELM_VERSION:-v3.22.0}"
major=${version%%.*}
log() { printf '[helm] %s\n' "$*" >&2; }

override_var=HELM
[[ "$major" == v3 ]] || override_var="HELM${major#v}"
override="${!override_var:-}"
if [[ -n "$override" ]]; then
  if [[ ! -x "$override" ]]; then
    log "$override_var=$override is not an executable file: unset it to build helm $version, or point it at a helm $major binary"
    exit 1
  fi
  printf '%s\n' "$override"
  exit 0
fi

cache="${DEMOMAIL_CACHE:-$HOME/.cache/demomail}/helm/$version"
bin="$cache/helm"
if [[ -x "$bin" ]]; then
  printf '%s\n' "$bin"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  log "helm $version is not built yet in $cache: run \`DEMOMAIL_HELM_VERSION=$version npm run helm:binary\` (or set $override_var)"
  exit 3
fi
command -v go >/dev/null || { log "go is not installed: install Go >= 1.26, or set $override_var to a helm $major binary"; exit 1; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "another build of $cache is running; waiting for it"
  flock 9
fi
if [[ ! -x "$bin" ]]; then
  log "building helm $version (about 2 minutes)…"
  start=$SECONDS
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # Without the -X flag `helm version` reports a placeholder; `.Capabilities.HelmVersion` reads it.
  CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$tmp" \
    go install -trimpath -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$version" "helm.sh/helm/$major/cmd/helm@$version"
  mv "$tmp/helm" "$bin"
  log "built helm $version in $((SECONDS - start))s"
fi
printf '%s\n' "$bin"
