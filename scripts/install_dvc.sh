#!/usr/bin/env bash
# Install DVC into its OWN venv (it brings ~50 packages; the project's pinned venv stays as it is).
# `labeling-assets dataset publish --dvc` finds it here (or $LABELING_ASSETS_DVC, or `dvc` on PATH).
# Idempotent: a stamp file records the installed version; a second run does nothing.
#
#   DVC_VENV     venv path (default ~/.cache/labeling-assets/dvc-<version>)
#   DVC_VERSION  version    (default 3.67.1)
set -euo pipefail

VERSION="${DVC_VERSION:-3.67.1}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/labeling-assets"
DVC_VENV="${DVC_VENV:-$CACHE/dvc-$VERSION}"
PYTHON_BIN="${PYTHON:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3

stamp_file="$DVC_VENV/.dvc-installed"
if [ "$(cat "$stamp_file" 2>/dev/null)" = "$VERSION" ] && [ -x "$DVC_VENV/bin/dvc" ]; then
  exit 0
fi

log() { printf '[install_dvc] %s\n' "$*" >&2; }
if [ ! -x "$DVC_VENV/bin/python" ]; then
  log "creating the DVC venv at $DVC_VENV"
  mkdir -p "$(dirname "$DVC_VENV")"
  "$PYTHON_BIN" -m venv "$DVC_VENV"
  "$DVC_VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip setuptools wheel \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi
log "installing dvc==$VERSION (a minute or two the first time)"
# Filter pip's noise about this machine's optional local index folders; real errors still show.
"$DVC_VENV/bin/pip" install -q --disable-pip-version-check "dvc==$VERSION" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$DVC_VENV/bin/dvc" version >/dev/null 2>&1 || { log "dvc does not run; see: $DVC_VENV/bin/dvc version"; exit 1; }
echo "$VERSION" >"$stamp_file"
log "DVC $VERSION ready: $DVC_VENV/bin/dvc"
