#!/usr/bin/env bash
# Builds the real Windows DLLs from Linux: mi_sdk.dll for 64-bit
# (x86_64-win7-windows-gnu) and 32-bit (i686-win7-windows-gnu) Windows, Windows 7 and
# later, with Debian's rustc-web (std built from source, unwinding so panics are
# caught at the C boundary) and mingw-w64, with mi-sdk.exe and mi-sim.exe beside it,
# all stripped; each carries a version resource (build/version_resource.rs). Also writes
# for each a .def file and the import library made from it (for 32-bit with the
# __stdcall decorations), for C clients that link rather than LoadLibrary. Output:
# target/windows/{x64,x86}/; scripts/package.sh zips them.
#
# With --test, also runs the library's unit tests built for 64-bit Windows under wine64
# (same release profile and flags as the DLL): among them, that a panic is caught at
# the C boundary and returned as MI_E_INTERNAL in the Windows build.
set -euo pipefail
run_tests=0
[ "${1:-}" = "--test" ] && run_tests=1
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/cargo ] && /usr/bin/cargo --version 2>/dev/null | grep -q "1\.9[0-9]" || need+=(rustc-web cargo-web rust-web-src)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64)
command -v i686-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-i686)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
fi

out=target/windows
mkdir -p "$out/rtstartup" "$out/x64" "$out/x86"
# i686 with build-std links rsbegin.o/rsend.o, which the source package does not ship built.
for f in rsbegin rsend; do
  [ -f "$out/rtstartup/$f.o" ] || PATH=/usr/bin:/bin RUSTC_BOOTSTRAP=1 rustc --target i686-pc-windows-gnu --emit=obj \
    -o "$out/rtstartup/$f.o" "/usr/lib/rustlib/src/rust/library/rtstartup/$f.rs"
done

# cargo for a Windows target with Debian's toolchain: cross_cargo <triple> <mingw gcc> <cargo args...>
# The built std includes `test` even for plain builds: every crate of a build-std build
# depends on each std crate named, so `cargo test` (which adds `test`) would otherwise
# rebuild all dependencies under new hashes (about 3 minutes of the suite).
cross_cargo() {
  local triple=$1 gcc=$2 upper
  shift 2
  upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
  env PATH=/usr/bin:/bin RUSTC_BOOTSTRAP=1 \
    "CARGO_TARGET_${upper}_LINKER=$gcc" "CC_${triple//-/_}=$gcc" "AR_${triple//-/_}=${gcc%gcc}ar" \
    "CARGO_TARGET_${upper}_RUSTFLAGS=-L native=$PWD/$out/rtstartup" \
    "CARGO_TARGET_${upper}_RUNNER=${WINE64:-wine64}" WINEPREFIX="$PWD/target/tmp/wineprefix" WINEDEBUG=-all \
    cargo "$@" --release --target "$triple" -Zbuild-std=std,panic_unwind,test --target-dir target/win
}

build() {
  local triple=$1 gcc=$2 dest=$3
  echo "== cargo build --target $triple"
  # The DLL, and the operators' command and the simulator as Windows programs.
  cross_cargo "$triple" "$gcc" build --quiet --workspace --lib --bins
  # Shipped without symbols (the exports are a table of their own); the build's
  # copies in target/win keep them for the tests that disassemble them.
  local f
  for f in mi_sdk.dll mi-sdk.exe mi-sim.exe; do
    "${gcc%gcc}strip" --strip-all -o "$dest/$f" "target/win/$triple/release/$f"
    echo "   $f: $(stat -c %s "target/win/$triple/release/$f") bytes built, $(stat -c %s "$dest/$f") stripped"
  done
}
build x86_64-win7-windows-gnu x86_64-w64-mingw32-gcc "$out/x64"
build i686-win7-windows-gnu i686-w64-mingw32-gcc "$out/x86"

# The decorated names a linking C client's __stdcall prototypes refer to.
cat > "$out/x86/mi_sdk.def" <<'DEF'
LIBRARY mi_sdk.dll
EXPORTS
mi_init@4
mi_call_sync@16
mi_call_async@16
mi_get_result@16
mi_get_request@16
mi_reverse@16
mi_upload_file@12
mi_download_file@20
mi_reconcile@12
mi_identify@12
mi_get_status@8
mi_last_error@8
mi_last_request_id@0
mi_shutdown@4
mi_version@0
mi_abi_version@0
mi_code_name@4
mi_sm3_hex@12
mi_sm4_encrypt_hex@24
mi_sm4_decrypt_hex@24
DEF
i686-w64-mingw32-dlltool -d "$out/x86/mi_sdk.def" -l "$out/x86/libmi_sdk.a" -k
# 64-bit Windows has one calling convention and no decorations.
sed 's/@[0-9]*$//' "$out/x86/mi_sdk.def" > "$out/x64/mi_sdk.def"
x86_64-w64-mingw32-dlltool -d "$out/x64/mi_sdk.def" -l "$out/x64/libmi_sdk.a"
ls -la "$out"/x64 "$out"/x86

if [ "$run_tests" = 1 ]; then
  WINE64=$(command -v wine64 || echo /usr/lib/wine/wine64)
  export WINE64
  echo "== the library's unit tests on 64-bit Windows, under $WINE64"
  mkdir -p target/tmp
  cross_cargo x86_64-win7-windows-gnu x86_64-w64-mingw32-gcc test --quiet --lib
fi
