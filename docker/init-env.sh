#!/usr/bin/env bash
# Write docker/.env (mode 0600) from docker/.env.example with a fresh random value for every "change-me":
# 48 hex characters from /dev/urandom. Prints the variable names it filled, never a value.
# An existing docker/.env is left alone (move it away to start over; the databases keep the old passwords).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:-$here/.env}"
if [ -e "$target" ]; then
  echo "init-env: $target exists; edit it or move it away" >&2
  exit 1
fi
umask 077
tmp="$(mktemp "$target.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
filled=()
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    [A-Z]*=change-me*)
      name="${line%%=*}"
      # printf and read are shell builtins: the value is on no process's command line.
      printf '%s=%s\n' "$name" "$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')" >>"$tmp"
      filled+=("$name")
      ;;
    *) printf '%s\n' "$line" >>"$tmp" ;;
  esac
done <"$here/.env.example"
chmod 600 "$tmp"
mv "$tmp" "$target"
trap - EXIT
echo "init-env: wrote $target (mode 0600) with random ${filled[*]}" >&2
echo "init-env: still to set by hand: LABEL_STUDIO_USERNAME, and PROXY_* before --profile proxy" >&2
