#!/usr/bin/env bash
# Builds Cerebro from source and installs the `cerebro` binary and its pip/npm/pnpm/bun/yarn/uv/pipx/poetry shims.
#
#   ./install.sh [OPTIONS]      build (release), install into PREFIX (default ~/.local)
#   ./install.sh --uninstall    remove everything this script installed
#
# Options:
#   --prefix DIR           install the binary in DIR/bin and the shims in
#                          DIR/share/cerebro/shims (default: $PREFIX, else ~/.local)
#   --binary FILE          install FILE as the cerebro binary instead of building one
#   --with-python-shims    also install python/python3/python3.X shims: `python -m pip
#                          ...` is guarded, every other python run is passed straight on
#
# Versioned shims (pip3.X, and python3.X with --with-python-shims) are installed for
# Python 3.8 to 3.14 and for every other pip3.X/python3.X found on PATH.
#   --add-to-profile       add the shell lines to ~/.bashrc and ~/.zshrc (once; a re-run
#                          updates them) instead of only printing them
#   --uninstall            remove the binary, the shims and the shell lines
#   --purge                with --uninstall, also remove Cerebro's config and cache
#                          folders without asking
#   -h, --help             show this help
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prefix="${PREFIX:-$HOME/.local}"
binary=""
python_shims=false
add_to_profile=false
uninstall=false
purge=false

block_start="# >>> cerebro >>>"
block_end="# <<< cerebro <<<"
# The minor versions that get pip3.X/python3.X shims: a fixed range, plus any other found
# on PATH (a versioned name left unshimmed would run pip unguarded).
versions="8 9 10 11 12 13 14"
IFS=: read -r -a path_dirs <<<"${PATH:-}"
for dir in "${path_dirs[@]}"; do
    for found in "$dir"/pip3.* "$dir"/python3.*; do
        minor="${found##*3.}"
        case "$minor" in
            "" | *[!0-9]*) continue ;;
        esac
        case " $versions " in
            *" $minor "*) ;;
            *) versions="$versions $minor" ;;
        esac
    done
done
manager_shims="pip pip3 npm npx pnpm pnpx bun bunx yarn uv uvx pipx poetry"
python_shim_names="python python3"
for minor in $versions; do
    manager_shims="$manager_shims pip3.$minor"
    python_shim_names="$python_shim_names python3.$minor"
done

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() {
    echo "error: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix="$2"; shift ;;
        --prefix=*) prefix="${1#*=}" ;;
        --binary) [ $# -ge 2 ] || die "--binary needs a file"; binary="$2"; shift ;;
        --binary=*) binary="${1#*=}" ;;
        --with-python-shims) python_shims=true ;;
        --add-to-profile) add_to_profile=true ;;
        --uninstall) uninstall=true ;;
        --purge) purge=true ;;
        --install) ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done
[ -n "$prefix" ] || die "--prefix is empty"
case "$prefix" in
    /*) ;;
    *) prefix="$PWD/$prefix" ;;
esac
prefix="${prefix%/}"
bin_dir="$prefix/bin"
shim_dir="$prefix/share/cerebro/shims"
profiles=("$HOME/.bashrc" "$HOME/.zshrc" "$HOME/.profile" "$HOME/.bash_profile")

# Removes the marked block from file $1, keeping the file itself (and its permissions).
remove_block() {
    local file="$1" tmp
    grep -qxF "$block_start" "$file" 2>/dev/null || return 0
    tmp="$(mktemp)"
    # A blank line right before the block was added with it, and goes with it.
    awk -v start="$block_start" -v end="$block_end" '
        $0 == start { skip = 1; blank = 0; next }
        skip { if ($0 == end) skip = 0; next }
        { if (blank) print ""; blank = 0 }
        $0 == "" { blank = 1; next }
        { print }
        END { if (blank) print "" }
    ' "$file" >"$tmp"
    cat "$tmp" >"$file"
    rm -f "$tmp"
    echo "removed the Cerebro lines from $file"
}

# Writes block file $2 into file $1: in place of an existing block, else at the end.
write_block() {
    local file="$1" block="$2" tmp
    if grep -qxF "$block_start" "$file" 2>/dev/null; then
        tmp="$(mktemp)"
        awk -v start="$block_start" -v end="$block_end" -v block="$block" '
            $0 == start { while ((getline line < block) > 0) print line; skip = 1; next }
            skip { if ($0 == end) skip = 0; next }
            { print }
        ' "$file" >"$tmp"
        cat "$tmp" >"$file"
        rm -f "$tmp"
        echo "updated the Cerebro lines in $file"
    else
        if [ -s "$file" ]; then
            echo >>"$file"
        fi
        cat "$block" >>"$file"
        echo "added the Cerebro lines to $file"
    fi
}

# Removes folder $1 with everything in it, unless it is empty-named, /, or $HOME.
remove_tree() {
    local dir="${1%/}"
    if [ -z "$dir" ] || [ "$dir" = "${HOME%/}" ] || [ ! -d "$dir" ]; then
        return 0
    fi
    rm -rf -- "$dir"
    echo "removed $dir"
}

if $uninstall; then
    # `cerebro setup` pointed pip.conf at the daemon: put it back while the binary is here
    # (else every pip would fail to connect). A refusal (pip.conf edited since) stops here.
    setup_state="${CEREBRO_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/cerebro}/daemon.toml"
    if [ -f "$setup_state" ] && [ -x "$bin_dir/cerebro" ]; then
        if ! "$bin_dir/cerebro" setup --undo; then
            echo "error: could not undo \`cerebro setup\` (above); fix that, then uninstall again" >&2
            exit 1
        fi
    fi
    if [ -f "$bin_dir/cerebro" ]; then
        rm -f "$bin_dir/cerebro"
        echo "removed $bin_dir/cerebro"
    fi
    for name in $manager_shims $python_shim_names; do
        rm -f "$shim_dir/$name"
    done
    # Versioned shims of a version no longer on PATH.
    rm -f "$shim_dir"/pip3.* "$shim_dir"/python3.*
    if rmdir "$shim_dir" 2>/dev/null; then
        echo "removed $shim_dir"
    fi
    rmdir "$prefix/share/cerebro" 2>/dev/null || true
    for file in "${profiles[@]}"; do
        if [ -f "$file" ]; then
            remove_block "$file"
        fi
    done
    config_dir="${CEREBRO_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/cerebro}"
    cache_dir="${CEREBRO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cerebro}"
    leftovers=()
    for dir in "$config_dir" "$cache_dir"; do
        if [ -d "$dir" ]; then
            leftovers+=("$dir")
        fi
    done
    if [ ${#leftovers[@]} -gt 0 ]; then
        if ! $purge && [ -t 0 ]; then
            printf 'Also remove your Cerebro settings and caches (%s)? [y/N] ' "${leftovers[*]}"
            read -r answer || answer=""
            case "$answer" in
                y | Y | yes | YES) purge=true ;;
            esac
        fi
        if $purge; then
            for dir in "${leftovers[@]}"; do
                remove_tree "$dir"
            done
        else
            echo "kept ${leftovers[*]} (settings, allowlist and caches)"
            echo "hint: ./install.sh --uninstall --purge removes them too"
        fi
    fi
    echo "Cerebro is uninstalled; open a new shell to drop the shims from PATH"
    exit 0
fi

if [ -n "$binary" ]; then
    if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
        die "--binary $binary is not an executable file"
    fi
else
    command -v cargo >/dev/null 2>&1 || {
        echo "error: cargo not found; install Rust from https://rustup.rs and re-run" >&2
        exit 1
    }
    # The product only: the training tools (cerebro-train, cerebro-dataset) are not installed.
    cargo build --release --locked --manifest-path "$here/Cargo.toml" -p cerebro --bin cerebro
    binary="${CARGO_TARGET_DIR:-$here/target}/release/cerebro"
fi

mkdir -p "$bin_dir" "$shim_dir"
install -m 0755 "$binary" "$bin_dir/cerebro"
echo "installed $bin_dir/cerebro"
names="$manager_shims"
if $python_shims; then
    names="$names $python_shim_names"
else
    # A re-run without the option turns the python shims off.
    for name in $python_shim_names; do
        rm -f "$shim_dir/$name"
    done
    rm -f "$shim_dir"/python3.*
fi
for name in $names; do
    # The shims are one script; a versioned name is a copy under that name.
    install -m 0755 "$here/shims/${name%%3.*}" "$shim_dir/$name"
done
echo "installed the shims ($names) in $shim_dir"

# The shell lines: the shims first on PATH, the policy, and functions that keep the shims in
# front after a virtualenv, conda or nvm puts its own bin folder first on PATH.
block="$(mktemp)"
trap 'rm -f "$block"' EXIT
{
    echo "$block_start"
    echo "# Added by Cerebro's install.sh; \`install.sh --uninstall\` removes this block."
    echo "case \":\$PATH:\" in *\":$shim_dir:\"*) ;; *) export PATH=\"$shim_dir:\$PATH\" ;; esac"
    echo "case \":\$PATH:\" in *\":$bin_dir:\"*) ;; *) export PATH=\"\$PATH:$bin_dir\" ;; esac"
    echo "export CEREBRO_POLICY=prompt"
    for name in $names; do
        echo "function $name { \"$shim_dir/$name\" \"\$@\"; }"
    done
    echo "$block_end"
} >"$block"

if $add_to_profile; then
    targets=()
    for file in "$HOME/.bashrc" "$HOME/.zshrc"; do
        if [ -f "$file" ]; then
            targets+=("$file")
        fi
    done
    if [ ${#targets[@]} -eq 0 ]; then
        case "${SHELL:-}" in
            */zsh) targets=("$HOME/.zshrc") ;;
            *) targets=("$HOME/.bashrc") ;;
        esac
    fi
    for file in "${targets[@]}"; do
        write_block "$file" "$block"
    done
    echo "open a new shell (or source ${targets[0]}) to turn the shims on"
    echo "the shims see only a pip you type; for a venv's pip run by scripts, make, IDEs and CI, also run: cerebro setup"
else
    echo
    echo "Add these lines to ~/.bashrc or ~/.zshrc (or re-run with --add-to-profile):"
    echo
    cat "$block"
fi
