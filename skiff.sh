#!/usr/bin/env bash
# skiff.sh — the one entry point for building, testing and running Skiff locally.
#
#   ./skiff.sh up       install missing packages, build, start a local 3-broker cluster
#   ./skiff.sh down     stop the local cluster (by the PIDs `up` recorded)
#   ./skiff.sh test     install, build, run the whole test suite (what CI runs)
#   ./skiff.sh soak     long randomized Raft simulation (SOAK_SECONDS, default 600)
#   ./skiff.sh bench    build and run the benchmarks (never part of `test`)
#   ./skiff.sh build    install and build only
#   ./skiff.sh format   clang-format every C++ file in place
#   ./skiff.sh clean    remove build/ and data/
#
# Environment: BUILD_DIR (default build), BUILD_TYPE (RelWithDebInfo), SANITIZE (address|thread),
# JOBS (default: number of cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}"
SANITIZE="${SANITIZE:-}"
JOBS="${JOBS:-$(nproc)}"
DATA_DIR="$ROOT/data"

PACKAGES=(cmake g++ ccache pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  librocksdb-dev libgoogle-glog-dev libgflags-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libisal-dev libzstd-dev liblz4-dev
  python3-grpcio python3-grpc-tools)

log() { printf '==> %s\n' "$*" >&2; }

install_deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "installing missing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

configure() {
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DSKIFF_SANITIZE="$SANITIZE" \
    "$@" >/dev/null
}

build() {
  install_deps
  log "building in $BUILD_DIR ($BUILD_TYPE${SANITIZE:+, $SANITIZE sanitizer})"
  configure
  cmake --build "$BUILD_DIR" -j "$JOBS" "$@"
}

cmd_test() {
  build
  log "running the test suite"
  # --output-on-failure shows a failing test's output; the last lines are ctest's summary.
  ctest --test-dir "$BUILD_DIR" -j "$JOBS" --output-on-failure --timeout 900
}

cmd_up() {
  build
  cat >&2 <<'MSG'

Skiff is built (build/skiffd, build/skiff), but a local cluster cannot start yet:
the broker's Raft host, metadata group and Produce/Fetch are not implemented, so skiffd
only serves gRPC health and answers UNIMPLEMENTED for the API. See README.md, "Status".
No cluster was started. `./skiff.sh test` runs what exists.
MSG
  return 1
}

cmd_down() {
  local pids_file="$DATA_DIR/pids"
  if [ ! -f "$pids_file" ]; then log "no local cluster recorded in $pids_file"; return 0; fi
  while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && log "stopped pid $pid" || true
  done <"$pids_file"
  rm -f "$pids_file"
}

cmd_soak() {
  build --target raft_sim
  local seconds="${SOAK_SECONDS:-600}"
  log "Raft simulation soak for ${seconds}s"
  "$BUILD_DIR/tests/sim/raft_sim" --time_limit_s="$seconds" "$@"
}

cmd_bench() {
  build
  local ran=0
  for b in "$BUILD_DIR"/tests/*/*_bench; do
    [ -x "$b" ] || continue
    log "$(basename "$b")"
    "$b" "$@"
    ran=1
  done
  [ "$ran" = 1 ] || log "no benchmarks built"
}

cmd_format() {
  git ls-files '*.h' '*.cc' | xargs clang-format -i
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  test) shift; cmd_test "$@" ;;
  soak) shift; cmd_soak "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  build) shift; build "$@" ;;
  format) cmd_format ;;
  clean) cmd_down; rm -rf "$BUILD_DIR" "$DATA_DIR" ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
