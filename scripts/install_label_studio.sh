#!/usr/bin/env bash
# Install Label Studio Community into its OWN venv (its Django pins clash with the project's).
# Idempotent: a stamp file records the installed version; a second run does nothing.
#
#   LABEL_STUDIO_VENV     venv path (default ~/.cache/labeling-assets/label-studio-<version>)
#   LABEL_STUDIO_VERSION  version    (default 1.23.2)
set -euo pipefail

VERSION="${LABEL_STUDIO_VERSION:-1.23.2}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/labeling-assets"
LS_VENV="${LABEL_STUDIO_VENV:-$CACHE/label-studio-$VERSION}"
PYTHON_BIN="${PYTHON:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3

stamp_file="$LS_VENV/.label-studio-installed"
if [ "$(cat "$stamp_file" 2>/dev/null)" = "$VERSION" ] && [ -x "$LS_VENV/bin/label-studio" ]; then
  exit 0
fi

log() { printf '[install_label_studio] %s\n' "$*" >&2; }
if [ ! -x "$LS_VENV/bin/python" ]; then
  log "creating the Label Studio venv at $LS_VENV"
  mkdir -p "$(dirname "$LS_VENV")"
  "$PYTHON_BIN" -m venv "$LS_VENV"
  "$LS_VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip setuptools wheel \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi
log "installing label-studio==$VERSION (a few minutes the first time)"
# Filter pip's noise about this machine's optional local index folders; real errors still show.
"$LS_VENV/bin/pip" install -q --disable-pip-version-check "label-studio==$VERSION" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$LS_VENV/bin/label-studio" --help >/dev/null 2>&1 || { log "label-studio does not run; see: $LS_VENV/bin/label-studio --help"; exit 1; }
echo "$VERSION" >"$stamp_file"
log "Label Studio $VERSION ready: $LS_VENV/bin/label-studio"
