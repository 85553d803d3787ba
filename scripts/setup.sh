#!/usr/bin/env bash
# Set up (idempotently) everything the project needs on a fresh machine, then export its environment.
# Sourced by scripts/demo and scripts/test. A second run reuses the environments: a stamp of the
# dependency files decides whether pip has anything to do. The venv is shared by every clone on the
# machine; each clone runs its own code through PYTHONPATH.
#
#   LABELING_ASSETS_VENV   project venv      (default ~/.cache/labeling-assets/venv)
#   LABEL_STUDIO_VENV      Label Studio venv (default ~/.cache/labeling-assets/label-studio-1.23.2)
#   LABELING_ASSETS_HOME   data folder       (default <repo>/data)
#
# Sourced from an interactive shell (README: `source scripts/setup.sh`), it leaves that shell's options as they
# were: `set -e` there would close the terminal at the next failing command. Scripts keep `set -euo pipefail`.
case "$-" in *i*) _la_shell_opts="$(set +o)" ;; *) _la_shell_opts="" ;; esac
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/labeling-assets"
VENV="${LABELING_ASSETS_VENV:-$CACHE/venv}"
PYTHON_BIN="${PYTHON:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3

log() { printf '[setup] %s\n' "$*" >&2; }
# pip, minus the machine pip.conf's noise about find-links folders that do not exist (status kept).
pip_q() { "$VENV/bin/pip" "$@" 2> >(grep -v "is neither a file nor a directory" >&2); }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating the project venv at $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON_BIN" -m venv "$VENV"
  pip_q install -q --upgrade pip setuptools wheel
fi

stamp_file="$VENV/.labeling-assets-deps"
stamp="$(cat "$REPO_ROOT/pyproject.toml" "$REPO_ROOT/requirements.lock" 2>/dev/null | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
  log "installing dependencies (torch ${TORCH_NOTE:-2.14.1} is a large wheel: the first time takes a few minutes)"
  pip_q install -q -c "$REPO_ROOT/requirements.lock" -e "$REPO_ROOT[dev,bench]"
  echo "$stamp" >"$stamp_file"
fi
# Label Studio lives in its own venv (its Django pins clash with ours).
if [ -x "$REPO_ROOT/scripts/install_label_studio.sh" ]; then
  "$REPO_ROOT/scripts/install_label_studio.sh"
fi
# DVC too (`labeling-assets dataset publish --dvc`; ~50 packages the project does not otherwise need).
if [ -x "$REPO_ROOT/scripts/install_dvc.sh" ]; then
  "$REPO_ROOT/scripts/install_dvc.sh"
fi

export PATH="$VENV/bin:$PATH"
# The venv (dependencies) is shared between clones; the code and the data are this clone's: PYTHONPATH puts its
# code ahead of the venv's editable install (whichever clone that points at), and the defaults below follow
# the clone last set up in this shell. A value the user exported (not one a setup.sh set) is kept.
prev="${LABELING_ASSETS_CLONE:-}"
if [ -n "$prev" ] && [ "$prev" != "$REPO_ROOT" ]; then
  PYTHONPATH="$(printf '%s' "${PYTHONPATH:-}" | tr ':' '\n' | { grep -vxF "$prev" || true; } | paste -sd: -)"
  [ "${LABELING_ASSETS_HOME:-}" = "$prev/data" ] && unset LABELING_ASSETS_HOME
  [ "${DAGSTER_HOME:-}" = "$prev" ] && unset DAGSTER_HOME
  [ "${MPLCONFIGDIR:-}" = "$prev/data/cache/matplotlib" ] && unset MPLCONFIGDIR
fi
export LABELING_ASSETS_CLONE="$REPO_ROOT"
case ":${PYTHONPATH:-}:" in *":$REPO_ROOT:"*) ;; *) export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" ;; esac
export DAGSTER_HOME="${DAGSTER_HOME:-$REPO_ROOT}"
export LABELING_ASSETS_HOME="${LABELING_ASSETS_HOME:-$REPO_ROOT/data}"
mkdir -p "$LABELING_ASSETS_HOME"
# matplotlib (reports and plots) keeps its font cache here instead of ~/.cache: every file in the data folder.
export MPLCONFIGDIR="${MPLCONFIGDIR:-$LABELING_ASSETS_HOME/cache/matplotlib}"
cd "$REPO_ROOT"
if [ -n "$_la_shell_opts" ]; then
  eval "$_la_shell_opts"
  echo "[setup] dagster and labeling-assets are on PATH in this shell; in a new shell, source scripts/setup.sh again" >&2
fi
unset _la_shell_opts
