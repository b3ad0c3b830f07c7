#!/usr/bin/env bash
# Builds the release artefacts into OUTDIR (default dist/):
#   rollama-<version>-linux-<arch>.tar.gz   the stripped static binary, shell completions, man
#       pages, LICENSE, README.md, install.sh and the starter-model fetcher, with a SHA256SUMS
#       of those files, all in a directory rollama-<version>-linux-<arch>/
#   rollama-<version>-linux-<arch>.debug    the binary's debug info (gdb finds it through the
#       binary's .gnu_debuglink)
#   rollama-<version>-src.tar.gz            the source (git archive of HEAD), what the Homebrew
#       formula builds
#   rollama.rb                              packaging/homebrew/rollama.rb with that source
#       tarball's sha256 filled in (ROLLAMA_RELEASE_URL: where the tarballs will be published)
#   SHA256SUMS                              of the four files above (install.sh --from checks it)
#
# The binary is the one the tests run: same profile and flags (scripts/cargo-env.sh), so after
# scripts/test.sh the build step here is a no-op. ROLLAMA_BINARY=PATH packages an already
# built binary instead. The archives are reproducible for a given binary: entries sorted,
# times set to the commit's (SOURCE_DATE_EPOCH), owners 0, gzip without name or time.
#
# Usage: scripts/release.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-dist}"
[ "$(uname -s)" = Linux ] || { echo "release.sh builds Linux tarballs; on macOS use the Homebrew formula" >&2; exit 1; }
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
name="rollama-$version-linux-$(uname -m)"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
url="${ROLLAMA_RELEASE_URL:-https://github.com/rollama/rollama/releases/download/v$version}"

binary="${ROLLAMA_BINARY:-}"
if [ -z "$binary" ]; then
    ./scripts/build-deps.sh
    # shellcheck source=scripts/cargo-env.sh
    . ./scripts/cargo-env.sh
    cargo build --release --locked --bin rollama
    binary="$ROLLAMA_BUILD_DIR/rollama"
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/completions" "$dir/man" "$dir/scripts"

# The debug info goes to its own file; the shipped binary is stripped and points at it.
cp "$binary" "$dir/rollama"
objcopy --only-keep-debug "$dir/rollama" "$out/$name.debug"
(cd "$out" && objcopy --strip-all --add-gnu-debuglink="$name.debug" "$dir/rollama")
chmod 0755 "$dir/rollama"

cp completions/rollama.bash completions/_rollama completions/rollama.fish "$dir/completions/"
cp man/*.1 "$dir/man/"
cp LICENSE README.md install.sh "$dir/"
cp scripts/fetch-starter-model.sh scripts/smollm2.sha256 "$dir/scripts/"
(cd "$dir" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort \
    | xargs sha256sum > SHA256SUMS)

archive() { # archive SOURCE_DIR ENTRY OUTPUT
    tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu \
        -C "$1" -cf - "$2" | gzip -9n > "$3"
}
archive "$stage" "$name" "$out/$name.tar.gz"

artefacts=("$name.tar.gz" "$name.debug")
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
    src="rollama-$version-src.tar.gz"
    git archive --format=tar --prefix="rollama-$version/" HEAD | gzip -9n > "$out/$src"
    sha="$(sha256sum "$out/$src" | cut -d' ' -f1)"
    commit="$(git rev-parse --short=12 HEAD)"
    sed -e "s|^  url \".*\"|  url \"$url/$src\"|" \
        -e "s|^  sha256 \".*\"|  sha256 \"$sha\"|" \
        -e "s|ROLLAMA_GIT_COMMIT\"\] = \"[^\"]*\"|ROLLAMA_GIT_COMMIT\"] = \"$commit\"|" \
        packaging/homebrew/rollama.rb > "$out/rollama.rb"
    artefacts+=("$src" rollama.rb)
else
    echo "not a git checkout: no source tarball or Homebrew formula" >&2
fi
(cd "$out" && sha256sum "${artefacts[@]}" > SHA256SUMS)

for file in "${artefacts[@]}"; do
    printf '%s\t%s\n' "$(du -h "$out/$file" | cut -f1)" "$out/$file"
done
echo "binary (stripped): $(stat -c %s "$dir/rollama") bytes"
