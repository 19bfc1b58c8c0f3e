#!/usr/bin/env bash
# Builds (once per version) the real control-plane binaries the e2e tests and the demo use:
# etcd, kube-apiserver, kube-controller-manager and kubectl, from Go modules through the Go module proxy.
#
# Prints the directory holding all four on its last line of stdout (the envtest convention:
# use it as KUBEBUILDER_ASSETS). Progress goes to stderr.
#
# - KUBEBUILDER_ASSETS set: binaries found there are used as they are; only missing ones are built.
# - Cache: ${DEMOMAIL_CACHE:-~/.cache/demomail}/k8s/<k8s version>-etcd-<etcd version>/ ; delete it to rebuild.
# A cold build takes 10-25 minutes on 2 cores; a warm run returns at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
k8s_mod="$here/test/control-plane/k8s"
etcd_mod="$here/test/control-plane/etcd"
k8s_version=$(awk '/^require k8s.io\/kubernetes /{print $3}' "$k8s_mod/go.mod")
etcd_version=$(awk '/^require go.etcd.io\/etcd\/server\/v3 /{print $3}' "$etcd_mod/go.mod")
cache="${DEMOMAIL_CACHE:-$HOME/.cache/demomail}/k8s/${k8s_version}-etcd-${etcd_version}"
mkdir -p "$cache"

log() { printf '[control-plane] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not installed: install Go >= 1.26 or set KUBEBUILDER_ASSETS to a directory with etcd, kube-apiserver, kube-controller-manager and kubectl"; exit 1; }

# Link a binary from KUBEBUILDER_ASSETS into the cache if the user provides it.
from_assets() {
  local name=$1
  if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$name" ]]; then
    ln -sf "$KUBEBUILDER_ASSETS/$name" "$cache/$name"
    return 0
  fi
  return 1
}

major=${k8s_version#v}; major=${major%%.*}
minor=${k8s_version#v*.}; minor=${minor%%.*}
# Without these -X flags /version reports v0.0.0 and kubectl warns about version skew.
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build_k8s() {
  local name=$1
  [[ -x "$cache/$name" ]] && return 0
  from_assets "$name" && { log "$name from KUBEBUILDER_ASSETS"; return 0; }
  log "building $name $k8s_version (cold build, several minutes)…"
  local start=$SECONDS
  (cd "$k8s_mod" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go build -trimpath -tags 'selinux,notest,grpcnotrace' -ldflags "$ldflags" \
      -o "$cache/$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$cache/$name.tmp" "$cache/$name"
  log "built $name in $((SECONDS - start))s"
}

build_etcd() {
  [[ -x "$cache/etcd" ]] && return 0
  from_assets etcd && { log "etcd from KUBEBUILDER_ASSETS"; return 0; }
  log "building etcd $etcd_version…"
  local start=$SECONDS
  (cd "$etcd_mod" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "-s -w" -o "$cache/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$cache/etcd.tmp" "$cache/etcd"
  log "built etcd in $((SECONDS - start))s"
}

build_etcd
build_k8s kube-apiserver
build_k8s kube-controller-manager
build_k8s kubectl
echo "$cache"
