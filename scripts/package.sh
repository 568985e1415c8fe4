#!/usr/bin/env bash
# Makes the packages a hospital's IT unpacks, in dist/:
#   mi_sdk-<version>-windows-x86.zip, mi_sdk-<version>-windows-x64.zip
#     from what scripts/build-windows.sh left in target/windows/{x86,x64}: mi_sdk.dll,
#     mi_sdk.def and its import library libmi_sdk.a, mi-sdk.exe, mi-sim.exe;
#   mi_sdk-<version>-linux-x86_64.tar.gz
#     from a release build made here: libmi_sdk.so, libmi_sdk.a, mi-sdk, mi-sim.
# Each also holds the header (include/), the bindings, the example config and C
# programs, the docs (Markdown) and README.md, all in one folder named like the
# package, with SHA256SUMS of every other file in it.
# With --windows or --linux, only those. Needs zip (and, for --linux, cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
mkdir -p dist
# The folders packages are staged in, removed however the script ends.
stages=()
trap 'rm -rf "${stages[@]}"' EXIT

# The files every package carries, copied into $1.
common() {
  local d=$1
  mkdir -p "$d/include" "$d/examples"
  cp include/mi_sdk.h "$d/include/"
  cp -r bindings docs sql README.md "$d/"
  cp examples/mi_sdk.example.json "$d/examples/"
  cp -r examples/c examples/browser_his "$d/examples/"
}

# SHA256SUMS over every file of the folder $1 (paths relative to it), written last.
sums() {
  (cd "$1" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum > SHA256SUMS)
}

windows() {
  local arch=$1 name="mi_sdk-$version-windows-$1" stage
  local from=target/windows/$arch
  for f in mi_sdk.dll mi_sdk.def libmi_sdk.a mi-sdk.exe mi-sim.exe; do
    [ -f "$from/$f" ] || { echo "package: $from/$f is missing: run scripts/build-windows.sh" >&2; exit 1; }
  done
  stage=$(mktemp -d)
  stages+=("$stage")
  mkdir "$stage/$name"
  cp "$from"/{mi_sdk.dll,mi_sdk.def,libmi_sdk.a,mi-sdk.exe,mi-sim.exe} "$stage/$name/"
  common "$stage/$name"
  sums "$stage/$name"
  rm -f "dist/$name.zip"
  (cd "$stage" && zip -qr -X "$OLDPWD/dist/$name.zip" "$name")
  rm -rf "$stage"
  echo "dist/$name.zip: $(stat -c %s "dist/$name.zip") bytes"
}

linux() {
  local name="mi_sdk-$version-linux-x86_64" stage rel=target/release
  cargo build --release --quiet --workspace --lib --bins
  stage=$(mktemp -d)
  stages+=("$stage")
  mkdir "$stage/$name"
  cp "$rel/libmi_sdk.so" "$rel/libmi_sdk.a" "$rel/mi-sdk" "$rel/mi-sim" "$stage/$name/"
  # Shipped without symbols, as the Windows files are (the static library keeps its
  # own: a linker needs them).
  strip --strip-all "$stage/$name/libmi_sdk.so" "$stage/$name/mi-sdk" "$stage/$name/mi-sim"
  common "$stage/$name"
  sums "$stage/$name"
  tar -C "$stage" -czf "dist/$name.tar.gz" --owner=0 --group=0 "$name"
  rm -rf "$stage"
  echo "dist/$name.tar.gz: $(stat -c %s "dist/$name.tar.gz") bytes"
}

case "$what" in
  --windows) windows x86; windows x64 ;;
  --linux) linux ;;
  all) windows x86; windows x64; linux ;;
  *) echo "usage: scripts/package.sh [--windows|--linux]" >&2; exit 2 ;;
esac
