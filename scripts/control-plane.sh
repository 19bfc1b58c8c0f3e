#!/usr/bin/env bash
# Builds (once per version) the real control-plane binaries the e2e tests and the demo use:
# etcd, kube-apiserver, kube-controller-manager and kubectl, from Go modules through the Go module proxy.
#
# Prints the directory holding all four on its last line of stdout (the envtest convention:
# use it as KUBEBUILDER_ASSETS). Progress goes to stderr.
#
# - KUBEBUILDER_ASSETS set and holding all four: that directory is printed as it is (no Go needed).
#   envtest asset directories usually lack kube-controller-manager: the missing ones are built into the
#   versioned cache, and a directory of symlinks (the user's binaries + ours) is printed.
# - Cache: ${DEMOMAIL_CACHE:-~/.cache/demomail}/k8s/<k8s version>-etcd-<etcd version>/ ; delete it to rebuild.
# - `--check`: build nothing; exit 3 (saying what is missing) when a build would be needed.
# - Concurrent runs (tap runs test files in parallel) wait on a lock instead of building twice.
# A cold build takes 5-25 minutes on 2 cores (5.5 min measured with a warm Go module cache); a warm run
# returns at once.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
k8s_mod="$here/test/control-plane/k8s"
etcd_mod="$here/test/control-plane/etcd"
k8s_version=$(awk '/^require k8s.io\/kubernetes /{print $3}' "$k8s_mod/go.mod")
etcd_version=$(awk '/^require go.etcd.io\/etcd\/server\/v3 /{print $3}' "$etcd_mod/go.mod")
cache_root="${DEMOMAIL_CACHE:-$HOME/.cache/demomail}/k8s"
cache="$cache_root/${k8s_version}-etcd-${etcd_version}"
binaries=(etcd kube-apiserver kube-controller-manager kubectl)

check_only=0
[[ "${1:-}" == "--check" ]] && check_only=1

log() { printf '[control-plane] %s\n' "$*" >&2; }

assets="${KUBEBUILDER_ASSETS:-}"
if [[ -n "$assets" ]]; then
  [[ -d "$assets" ]] || { log "KUBEBUILDER_ASSETS=$assets is not a directory: unset it to build the binaries, or point it at a directory holding ${binaries[*]}"; exit 1; }
  assets=$(cd "$assets" && pwd)
  missing=()
  for name in "${binaries[@]}"; do [[ -x "$assets/$name" ]] || missing+=("$name"); done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "$assets"
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$assets lacks ${missing[*]}: building those ($k8s_version) and combining"
fi

needs_build=0
for name in "${binaries[@]}"; do
  [[ -n "$assets" && -x "$assets/$name" ]] && continue
  [[ -x "$cache/$name" ]] || needs_build=1
done
if [[ $needs_build -eq 1 && $check_only -eq 1 ]]; then
  log "not built yet in $cache: run \`npm run e2e:binaries\` (or set KUBEBUILDER_ASSETS)"
  exit 3
fi
if [[ $needs_build -eq 1 ]]; then
  command -v go >/dev/null || { log "go is not installed: install Go >= 1.26, or set KUBEBUILDER_ASSETS to a directory with ${binaries[*]}"; exit 1; }
fi

mkdir -p "$cache"
# One builder at a time per version; the others wait here and then find the binaries built.
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "another build of $cache is running; waiting for it"
  flock 9
fi

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
  [[ -n "$assets" && -x "$assets/$name" ]] && return 0
  [[ -x "$cache/$name" ]] && return 0
  log "building $name $k8s_version (cold build, several minutes)…"
  local start=$SECONDS
  (cd "$k8s_mod" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    go build -trimpath -tags 'selinux,notest,grpcnotrace' -ldflags "$ldflags" \
      -o "$cache/$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$cache/$name.tmp" "$cache/$name"
  log "built $name in $((SECONDS - start))s"
}

build_etcd() {
  [[ -n "$assets" && -x "$assets/etcd" ]] && return 0
  [[ -x "$cache/etcd" ]] && return 0
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

if [[ -z "$assets" ]]; then
  echo "$cache"
  exit 0
fi
# The user's binaries first, ours for the rest; keyed by the assets path so two users' dirs never mix.
combined="$cache_root/assets-$(printf '%s' "$assets" | sha256sum | cut -c1-12)-with-${k8s_version}"
mkdir -p "$combined"
for name in "${binaries[@]}"; do
  if [[ -x "$assets/$name" ]]; then ln -sfn "$assets/$name" "$combined/$name"; else ln -sfn "$cache/$name" "$combined/$name"; fi
done
echo "$combined"
