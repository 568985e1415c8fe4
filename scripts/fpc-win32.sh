#!/usr/bin/env bash
# Makes a Free Pascal cross compiler for 32-bit Windows (ppcross386) and the run-time
# units it needs (System, SysUtils and their kin), from Debian's fpc-source, so that
# the Delphi binding's test is also built as the 32-bit Windows program a Delphi 7 HIS
# is, and run under 32-bit Wine (tests/windows.rs). About 20 s of compiling, once.
#   scripts/fpc-win32.sh [DIR]    default target/fpc-win32 (or $MI_FPC_WIN32)
# DIR/ppcross386 then compiles with: -Twin32 -Pi386 -n -FuDIR/units
# Installs fp-compiler and fpc-source when missing (needs root and apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-${MI_FPC_WIN32:-target/fpc-win32}}")
[ -f "$out/.mi-ready" ] && { echo "$out"; exit 0; }
ver=3.2.2
need=()
command -v fpc >/dev/null 2>&1 || need+=(fp-compiler-$ver fp-units-rtl-$ver)
[ -d /usr/share/fpcsrc/$ver ] || need+=(fpc-source-$ver)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
fi
msgs=$(ls /usr/lib/*/fpc/$ver/msg/errore.msg | head -1)
rm -rf "$out"
mkdir -p "$out/units"
src="$out/src"
cp -r /usr/share/fpcsrc/$ver "$src"

# The compiler: Debian's source lacks the message tables the build generates.
(
  cd "$src/compiler"
  mkdir -p units
  fpc -FUunits -outils/msg2inc utils/msg2inc.pp >/dev/null
  ./utils/msg2inc "$msgs" msg msg >/dev/null
  fpc -di386 -Fui386 -Fusystems -Fux86 -Fuutils -Fiinc -Fii386 -Fix86 -FUunits -o"$out/ppcross386" pp.pas >"$out/compiler.log" 2>&1 ||
    { tail -20 "$out/compiler.log"; exit 1; }
)

# The units, in the order the RTL's own build makes them.
r="$src/rtl"
opts=(-Twin32 -Pi386 -n -O2 "-FU$out/units" "-Fu$out/units")
for d in inc i386 x86 win win32 win/wininc objpas objpas/sysutils objpas/classes charmaps unicode; do
  opts+=("-Fi$r/$d" "-Fu$r/$d")
done
unit() { "$out/ppcross386" "${opts[@]}" "$@" >>"$out/rtl.log" 2>&1 || { tail -20 "$out/rtl.log"; exit 1; }; }
unit -Us -Sg "$r/win32/system.pp"
unit "$r/objpas/objpas.pp"
unit "$r/win32/sysinitpas.pp"
unit "$r/inc/fpintres.pp"
unit "$r/win/sysutils.pp"
rm -rf "$src"
touch "$out/.mi-ready"
echo "$out"
