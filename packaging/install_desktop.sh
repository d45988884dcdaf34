#!/usr/bin/env bash
# Install the launcher, the AppStream metadata and the icons under XDG paths: PREFIX/share/...
# Usage: packaging/install_desktop.sh [PREFIX]   (default ~/.local; /usr/local for all users)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
icons="$here/../resources/icons"
share="${1:-$HOME/.local}/share"
id=org.paipviewer.paipviewer
install -Dm644 "$here/$id.desktop" "$share/applications/$id.desktop"
install -Dm644 "$here/$id.metainfo.xml" "$share/metainfo/$id.metainfo.xml"
install -Dm644 "$icons/$id.svg" "$share/icons/hicolor/scalable/apps/$id.svg"
for png in "$icons"/*x*/"$id.png"; do
    size="$(basename "$(dirname "$png")")"
    install -Dm644 "$png" "$share/icons/hicolor/$size/apps/$id.png"
done
command -v update-desktop-database >/dev/null && update-desktop-database -q "$share/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$share/icons/hicolor" || true
echo "installed $id under $share"
