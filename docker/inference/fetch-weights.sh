#!/usr/bin/env bash
# Downloads the weights listed in weights.lock into <models-dir>, checks the pinned sha256s and
# writes <models-dir>/SHA256SUMS (verify a running image with: cd /app/models && sha256sum -c SHA256SUMS).
#   fetch-weights.sh <weights.lock> <models-dir>      STRICT_WEIGHTS=1 refuses unpinned entries
# Runs in the image's weights stage (huggingface_hub and gdown installed there), never at run time.
set -euo pipefail

lock="$1"
out="$2"
strict="${STRICT_WEIGHTS:-0}"
mkdir -p "$out"
: > "$out/SHA256SUMS"
unpinned=0

while read -r path source expected; do
  case "$path" in ''|'#'*) continue ;; esac
  dest="$out/$path"
  mkdir -p "$(dirname "$dest")"
  case "$source" in
    hf:*)
      spec="${source#hf:}"; repo="${spec%%@*}"; rest="${spec#*@}"; rev="${rest%%:*}"; file="${rest#*:}"
      tmp="$(mktemp -d)"
      huggingface-cli download "$repo" "$file" --revision "$rev" --local-dir "$tmp" >/dev/null
      mv "$tmp/$file" "$dest"
      rm -rf "$tmp"
      ;;
    gdrive:*) gdown --quiet --id "${source#gdrive:}" -O "$dest" ;;
    url:*) curl -fsSL --retry 3 -o "$dest" "${source#url:}" ;;
    *) echo "fetch-weights: unknown source '$source' for $path" >&2; exit 1 ;;
  esac
  actual="$(sha256sum "$dest" | cut -d' ' -f1)"
  if [ "$expected" = "-" ]; then
    unpinned=$((unpinned + 1))
    echo "fetch-weights: UNPINNED $path sha256=$actual (copy it into weights.lock)"
  elif [ "$expected" != "$actual" ]; then
    echo "fetch-weights: CHECKSUM MISMATCH for $path: expected $expected, got $actual" >&2
    exit 1
  else
    echo "fetch-weights: ok $path"
  fi
  echo "$actual  $path" >> "$out/SHA256SUMS"
done < "$lock"

if [ "$unpinned" -gt 0 ] && [ "$strict" = "1" ]; then
  echo "fetch-weights: $unpinned weights are not pinned in weights.lock and STRICT_WEIGHTS=1" >&2
  exit 1
fi
