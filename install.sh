#!/usr/bin/env bash
# Builds Cerebro from source and installs the `cerebro` binary.
#
#   ./install.sh               build (release) and install into $PREFIX/bin (default ~/.local)
#   ./install.sh --uninstall   remove what this script installed
#
# The pip/npm shims arrive with the install guard; this installs the scanner.
set -euo pipefail

PREFIX="${PREFIX:-$HOME/.local}"
BIN="$PREFIX/bin"
here="$(cd "$(dirname "$0")" && pwd)"

case "${1:-}" in
    --uninstall)
        rm -f "$BIN/cerebro"
        echo "removed $BIN/cerebro"
        exit 0
        ;;
    ""|--install) ;;
    -h|--help)
        sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "error: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
esac

command -v cargo >/dev/null 2>&1 || {
    echo "error: cargo not found; install Rust from https://rustup.rs and re-run" >&2
    exit 1
}
cargo build --release --locked --manifest-path "$here/Cargo.toml"
mkdir -p "$BIN"
install -m 0755 "$here/target/release/cerebro" "$BIN/cerebro"
echo "installed $BIN/cerebro"
case ":$PATH:" in
    *":$BIN:"*) ;;
    *) echo "hint: add $BIN to PATH, e.g. echo 'export PATH=\"$BIN:\$PATH\"' >> ~/.bashrc" ;;
esac
