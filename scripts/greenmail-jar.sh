#!/usr/bin/env bash
# Fetches (once per version) the real GreenMail standalone jar from Maven Central with Maven, for the
# mail integration tests and the demo. Prints the jar's path on the last line of stdout; progress and
# errors go to stderr.
#
# - DEMOMAIL_GREENMAIL_JAR set: that file is used as it is (must exist); nothing is downloaded.
# - DEMOMAIL_GREENMAIL_VERSION: default below, the same version as the default image
#   (MAILSERVER_IMAGE greenmail/standalone:2.1.7); >= 2.1.7 fixed an IMAP CPU leak seen on Kubernetes.
# - Cache: ${DEMOMAIL_CACHE:-~/.cache/demomail}/greenmail/<version>/greenmail-standalone.jar; delete it to refetch.
set -euo pipefail

version="${DEMOMAIL_GREENMAIL_VERSION:-2.1.7}"
log() { printf '[greenmail-jar] %s\n' "$*" >&2; }

if [[ -n "${DEMOMAIL_GREENMAIL_JAR:-}" ]]; then
  if [[ ! -f "$DEMOMAIL_GREENMAIL_JAR" ]]; then
    log "DEMOMAIL_GREENMAIL_JAR=$DEMOMAIL_GREENMAIL_JAR does not exist; unset it to download version $version, or point it at greenmail-standalone-<version>.jar"
    exit 1
  fi
  printf '%s\n' "$DEMOMAIL_GREENMAIL_JAR"
  exit 0
fi

cache="${DEMOMAIL_CACHE:-$HOME/.cache/demomail}/greenmail/$version"
jar="$cache/greenmail-standalone.jar"
if [[ -s "$jar" ]]; then
  printf '%s\n' "$jar"
  exit 0
fi

command -v mvn >/dev/null || { log "mvn is not installed: install Maven (Debian: apt-get install maven) or set DEMOMAIL_GREENMAIL_JAR to a downloaded greenmail-standalone jar"; exit 1; }
command -v java >/dev/null || { log "java is not installed: GreenMail needs Java >= 11 (Debian: apt-get install openjdk-17-jre-headless)"; exit 1; }

mkdir -p "$cache"
tmp=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "fetching com.icegreen:greenmail-standalone:$version from Maven Central…"
# dependency:copy resolves through the local repository (~/.m2) and writes a plain file we can rename
# atomically, so a concurrent run never sees a half-written jar.
# Maven's output is kept for the error case only (on success it prints nothing useful, just ANSI resets).
if ! mvn_log=$(mvn -q -B -Dstyle.color=never dependency:copy \
    -Dartifact="com.icegreen:greenmail-standalone:$version:jar" \
    -DoutputDirectory="$tmp" -Dmdep.stripVersion=true -Dtransitive=false 2>&1); then
  printf '%s\n' "$mvn_log" | tail -n 30 >&2
  log "Maven could not fetch com.icegreen:greenmail-standalone:$version; check the version exists on Maven Central and that Maven reaches it"
  exit 1
fi
[[ -s "$tmp/greenmail-standalone.jar" ]] || { log "Maven reported success but $tmp/greenmail-standalone.jar is missing"; exit 1; }
mv "$tmp/greenmail-standalone.jar" "$jar"
log "cached $jar"
printf '%s\n' "$jar"
