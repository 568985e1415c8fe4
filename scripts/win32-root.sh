#!/usr/bin/env bash
# A 32-bit Debian (i386) root with 32-bit Wine, where the 32-bit mi_sdk.dll and the
# programs that load it run as on a hospital's 32-bit HIS: Debian's amd64 system
# cannot take wine32 beside wine64, a chroot can. Made on first use (about 3
# minutes, mostly downloads) and reused. Also makes the zh_CN.UTF-8 locale, under
# which Wine is Chinese Windows (GetACP() = 936, ANSI strings in GBK).
#
#   scripts/win32-root.sh [ROOT]                  make ROOT if needed, print it
#   scripts/win32-root.sh --run ROOT DIR EXE ARGS  run `wine EXE ARGS` in DIR
#   scripts/win32-root.sh --kill ROOT              end the programs running there (C.UTF-8)
#
# ROOT defaults to target/i386-root; DIR and EXE are paths inside ROOT (Wine's Z:
# is ROOT's /). Needs root. /proc and /dev are bind-mounted only inside a private
# mount namespace for the time of each step, so nothing stays mounted under ROOT
# and deleting target/ never reaches the host's /dev.
set -euo pipefail
cd "$(dirname "$0")/.."

# in_root ROOT CMD...: CMD inside ROOT with /proc and /dev, in its own mount namespace.
in_root() {
  local root=$1
  shift
  unshare --mount --propagation private sh -c '
    root=$1; shift
    mount --bind /proc "$root/proc" && mount --bind /dev "$root/dev" && exec chroot "$root" "$@"' \
    in_root "$root" "$@"
}

if [ "${1:-}" = "--kill" ]; then
  # Ends every Windows program running in ROOT's C.UTF-8 prefix (a service, a simulator).
  in_root "${2:?usage: $0 --kill ROOT}" env WINEPREFIX=/tmp/wineprefix32-C wineserver -k 2>/dev/null || true
  exit 0
fi
if [ "${1:-}" = "--run" ]; then
  [ $# -ge 4 ] || { echo "usage: $0 --run ROOT DIR EXE [ARGS...]" >&2; exit 2; }
  root=$2 dir=$3
  shift 3
  # LANG_IN_ROOT=zh_CN.UTF-8 makes Wine Chinese Windows (code page 936); a prefix
  # takes its locale when it is made, so each locale has its own.
  lang=${LANG_IN_ROOT:-C.UTF-8}
  in_root "$root" env WINEPREFIX="/tmp/wineprefix32-${lang%%.*}" WINEDEBUG=-all LANG="$lang" \
    sh -c 'cd "$0" && exec wine "$@"' "$dir" "$@"
  exit
fi

root=${1:-$PWD/target/i386-root}
if [ ! -f "$root/.mi-ready" ]; then
  [ "$(id -u)" = 0 ] || { echo "win32-root.sh: making the i386 root needs root" >&2; exit 1; }
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  # The mirror the host's apt uses.
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  # A half-made root from an interrupted run (it carries .mi-making) is started
  # again; any other folder that is not empty is left alone.
  if [ -e "$root/.mi-making" ]; then
    rm -rf --one-file-system -- "$root"
  elif [ -n "$(ls -A -- "$root" 2>/dev/null)" ]; then
    echo "win32-root.sh: $root exists and is not a root this script made; give another folder" >&2
    exit 1
  fi
  mkdir -p -- "$root"
  touch "$root/.mi-making"
  # debootstrap mounts /proc and /sys in the root while it works: in a namespace of
  # its own, so nothing stays mounted if it is killed.
  unshare --mount --propagation private debootstrap --arch=i386 --variant=minbase bookworm "$root" "$mirror" \
    > "$root.debootstrap.log" 2>&1 || { tail -20 "$root.debootstrap.log" >&2; exit 1; }
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  in_root "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    wine wine32 locales > "$root.apt.log" 2>&1 || { tail -20 "$root.apt.log" >&2; exit 1; }
  printf 'zh_CN.UTF-8 UTF-8\nen_US.UTF-8 UTF-8\n' >> "$root/etc/locale.gen"
  in_root "$root" locale-gen > /dev/null
  # Programs and their files go under /work inside the root.
  mkdir -p "$root/work"
  # Wine's first start makes its prefix (about a minute): done here, while the DLLs
  # build, not in the first test.
  for lang in C.UTF-8 zh_CN.UTF-8; do
    in_root "$root" env WINEPREFIX="/tmp/wineprefix32-${lang%%.*}" WINEDEBUG=-all LANG="$lang" \
      sh -c "wineboot -i && wineserver -w" > "$root.wineboot.log" 2>&1 ||
      { tail -20 "$root.wineboot.log" >&2; exit 1; }
  done
  touch "$root/.mi-ready"
  rm -f "$root/.mi-making"
fi
echo "$root"
