#!/usr/bin/env bash
# Runs every test of mi_sdk. Installs what the tests need (gcc, g++, openssl, python3,
# valgrind, mono for C#, fpc for Delphi; for the Windows builds mingw, Debian's
# rustc-web, wine64, an i386 root with 32-bit Wine, Free Pascal for win32) when missing,
# then: format and lint checks, the build (shared library and header), the Windows
# DLLs and programs, the release packages (scripts/package.sh), all Rust, C and
# simulator tests (among them each package unpacked and run), those that talk to the
# platform again under each of its variants (docs/regions/), and the fuzz targets for
# 20 s each (scripts/fuzz.sh).
# With MI_REQUIRE_ALL=1 (CI), a skipped toolchain fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase line says when it began (minutes:seconds into the run), for the budget.
at() { printf '[%d:%02d]' $((SECONDS / 60)) $((SECONDS % 60)); }

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v g++ >/dev/null 2>&1 || need+=(g++)
# OpenSSL 3 is the independent implementation the SM2/SM3/SM4 tests compare against.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The release packages are zipped, and unpacked by the tests as a hospital's IT would.
command -v zip >/dev/null 2>&1 || need+=(zip)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
# Memory checks of the C programs (AddressSanitizer comes with gcc).
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
# The bindings' runtimes: mono (with the CJK code pages for GBK) and Free Pascal.
command -v mcs >/dev/null 2>&1 || need+=(mono-mcs mono-runtime libmono-i18n4.0-cil libmono-i18n-cjk4.0-cil)
command -v fpc >/dev/null 2>&1 || need+=(fp-compiler-3.2.2 fp-units-rtl-3.2.2)
# The monitor page and the browser HIS example run in headless Chromium, with a
# Chinese font for its screenshots.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-zenhei)
# The database bridge: unixODBC to link `mi-sdk` against, and the databases its tests
# start on loopback (PostgreSQL, MariaDB) with their clients and ODBC drivers.
[ -e /usr/include/sql.h ] || need+=(unixodbc-dev)
grep -qs '^\[PostgreSQL Unicode\]' /etc/odbcinst.ini || need+=(odbc-postgresql)
grep -qs '^\[MariaDB Unicode\]' /etc/odbcinst.ini || need+=(odbc-mariadb)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
[ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
# The Windows DLLs are built and tested when CI requires everything, or when the
# cross toolchain is already here; wine64 runs the 64-bit one.
windows=0
if [ "${MI_REQUIRE_ALL:-0}" = 1 ] || { [ -x /usr/bin/cargo ] && command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; }; then
  windows=1
  [ -x /usr/lib/wine/wine64 ] || command -v wine64 >/dev/null 2>&1 || need+=(wine wine64)
  # 32-bit Wine lives in an i386 root that debootstrap makes (scripts/win32-root.sh).
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  # Free Pascal's sources, for its cross compiler to 32-bit Windows (scripts/fpc-win32.sh).
  [ -d /usr/share/fpcsrc/3.2.2 ] || need+=(fpc-source-3.2.2)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== $(at) installing ${need[*]}"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "cannot install ${need[*]} (need root and apt-get); the tests that use them will say SKIPPED"
  fi
fi

# sqlfluff (PyPI), a SQL parser with T-SQL and Oracle grammars: the database bridge's
# scripts for the two databases that cannot run here are parsed by it (tests/bridge.rs).
if [ ! -x target/sqlfluff/bin/sqlfluff ]; then
  echo "== $(at) installing sqlfluff into target/sqlfluff"
  { python3 -m venv target/sqlfluff && target/sqlfluff/bin/pip install -q sqlfluff==4.5.0; } ||
    echo "sqlfluff could not be installed; the test that needs it will say SKIPPED"
fi
echo "== $(at) cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
echo "== $(at) cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== $(at) cargo build (shared library, static library, header)"
cargo build --workspace --quiet
rm -f target/windows-units.txt
if [ "$windows" = 1 ]; then
  # The i386 root for 32-bit Wine is mostly downloads: it is made while the DLLs
  # build. Without it the 32-bit run-time test says SKIPPED (fails under
  # MI_REQUIRE_ALL=1).
  echo "== $(at) scripts/win32-root.sh (in the background)"
  # Each background job leads its own process group (setsid), so that a failure
  # ends it with all it started (kill -- -PID).
  setsid -w scripts/win32-root.sh > target/win32-root.txt 2>&1 &
  win32_root=$!
  echo "== $(at) scripts/fpc-win32.sh (in the background)"
  setsid -w scripts/fpc-win32.sh > target/fpc-win32.txt 2>&1 &
  fpc_win32=$!
  # The Linux release build for its package, at a lower priority, in the gaps the
  # Windows builds leave (linking, the last crate's code generation).
  echo "== $(at) scripts/package.sh --linux (in the background)"
  setsid -w nice -n 10 scripts/package.sh --linux > target/package-linux.txt 2>&1 &
  linux_package=$!
  echo "== $(at) scripts/build-windows.sh --test"
  end_jobs() { for pid in "$win32_root" "$linux_package" "$fpc_win32"; do kill -- -"$pid" 2>/dev/null || true; done; }
  scripts/build-windows.sh --test 2>&1 | tee target/windows-units.txt || { end_jobs; exit 1; }
  echo "== $(at) scripts/package.sh --windows"
  scripts/package.sh --windows || { end_jobs; exit 1; }
  wait "$linux_package" || { cat target/package-linux.txt; end_jobs; exit 1; }
  cat target/package-linux.txt
  wait "$fpc_win32" && echo "== $(at) Free Pascal for win32 ready: $(tail -1 target/fpc-win32.txt)" ||
    { echo "== $(at) Free Pascal for win32 could not be made:"; cat target/fpc-win32.txt; }
  wait "$win32_root" && echo "== $(at) 32-bit Wine root ready: $(tail -1 target/win32-root.txt)" ||
    { echo "== $(at) the 32-bit Wine root could not be made:"; cat target/win32-root.txt; }
fi
if [ "$windows" = 0 ]; then
  echo "== $(at) scripts/package.sh --linux"
  scripts/package.sh --linux
fi
# The fuzz targets build meanwhile, at the lowest priority: they take the CPU the
# tests leave while they wait on sockets, child processes and Wine (about 5 minutes
# of compiling).
nice -n 19 scripts/fuzz.sh --build > target/fuzz-build.txt 2>&1 &
fuzz_build=$!
echo "== $(at) cargo test"
mkdir -p target/tmp && rm -f target/tmp/skipped.txt
cargo test --workspace 2>&1 | tee target/test-output.txt
# Platform variants (docs/regions/): every integration test that talks to the
# platform through a config the test can reach runs again against each non-default
# variant, chosen on both sides (simulator and SDK config) by MI_SIM_VARIANT alone.
# Not rerun, because the variant cannot reach them: the unit tests (no platform),
# header, windows, bindings and demos (their programs build a national config
# inside themselves), bridge (its databases, not the platform, are what it tests), the C programs that do the same (abi_test.c and the memory
# runs of c_program), and regions (it names its regions itself). Two variants run
# at a time: the tests wait on sockets and child processes about half the time.
# About 2 minutes per pair on 2 cores.
variant_tests=()
for t in abi_async abi_calls abi_inputs c_program classes cli crash crypto dropbox encrypted_answers \
         engine files hostile mobile_pay node_id ownership reconcile secrets storage tls; do
  variant_tests+=(--test "$t")
done
variant_skips=(--skip c99_program_against_the_shared_library --skip header_compiles_as_pedantic
               --skip a_hundred_thousand_calls_keep_memory_flat --skip c_programs_under_)
variants_failed=()
for pair in "guangzhou hebei" "jilin wrapped"; do
  pids=()
  for variant in $pair; do
    echo "== $(at) cargo test, platform variant $variant"
    MI_SIM_VARIANT=$variant cargo test -q --no-fail-fast -p mi_sdk "${variant_tests[@]}" -- "${variant_skips[@]}" \
      > "target/test-variant-$variant.txt" 2>&1 &
    pids+=($!)
  done
  set -- $pair
  for pid in "${pids[@]}"; do
    variant=$1
    shift
    out=target/test-variant-$variant.txt
    status=0
    wait "$pid" || status=$?
    cat "$out" >> target/test-output.txt
    if [ "$status" = 0 ]; then
      echo "== $(at) platform variant $variant: $(grep -c '^test result: ok' "$out") test binaries passed"
    else
      variants_failed+=("$variant")
      echo "== $(at) platform variant $variant FAILED:"
      cat "$out"
    fi
  done
done
# One closing line over all test binaries, for people and CI alike.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed\n(%d ignored: helpers the tests run as child processes; the count includes the unit tests run on Windows under wine64)\n", p, f, i }' target/test-output.txt $( [ -f target/windows-units.txt ] && [ "$windows" = 1 ] && echo target/windows-units.txt)
# Fuzzing (nightly, cargo-fuzz): each target for FUZZ_SECONDS, two at a time (20 s
# here; scripts/fuzz.sh alone runs 60), built at the lowest priority beside cargo test.
export FUZZ_SECONDS=${FUZZ_SECONDS:-20}
fuzz_failed=0
fuzz_built=1
wait "$fuzz_build" || { fuzz_built=0; cat target/fuzz-build.txt; }
echo "== $(at) scripts/fuzz.sh ($FUZZ_SECONDS s per target)"
[ "$fuzz_built" = 0 ] || scripts/fuzz.sh || fuzz_failed=1
[ ${#variants_failed[@]} = 0 ] || echo "failed under platform variant(s): ${variants_failed[*]} (target/test-variant-*.txt)"
if [ -s target/tmp/skipped.txt ]; then
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  cat target/tmp/skipped.txt
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
  [ "${MI_REQUIRE_ALL:-0}" = 1 ] && { echo "MI_REQUIRE_ALL=1: a skip is a failure"; exit 1; }
fi
[ "$fuzz_built" = 1 ] || { echo "the fuzz targets did not build (see above)"; exit 1; }
[ "$fuzz_failed" = 0 ] || { echo "fuzzing found a crash (see above)"; exit 1; }
[ ${#variants_failed[@]} = 0 ] || exit 1
exit 0
