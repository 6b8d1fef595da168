#!/usr/bin/env bash
# skiff.sh — the one entry point for building, testing and running Skiff locally.
#
#   ./skiff.sh up       install missing packages, build, start a local 3-broker cluster
#   ./skiff.sh down     stop the local cluster (by the PIDs `up` recorded)
#   ./skiff.sh test     install, build, run the whole test suite (what CI runs)
#   ./skiff.sh soak     long randomized Raft simulation (SOAK_SECONDS, default 600)
#   ./skiff.sh soak-cluster [--minutes N] [--net loopback|netns] [--brokers 3|5]
#                       random mix of chaos scenarios against real brokers
#                       (tests/chaos; default 30 minutes; evidence of failures in build/chaos-evidence)
#   ./skiff.sh bench    build and run the benchmarks (never part of `test`)
#   ./skiff.sh perf [-- skiffd flags]
#                       measure throughput, one-in-flight latency and idle cost on a
#                       throwaway local cluster (tools/perf_goals.sh; ~3 minutes)
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
  python3-grpcio python3-grpc-tools iptables)

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
  if [ "$SANITIZE" = thread ]; then
    # gRPC's libraries are not instrumented: see tests/tsan.supp for what this hides and why.
    export TSAN_OPTIONS="${TSAN_OPTIONS:-ignore_noninstrumented_modules=1 history_size=4 suppressions=$ROOT/tests/tsan.supp}"
  fi
  # --output-on-failure shows a failing test's output; the last lines are ctest's summary.
  ctest --test-dir "$BUILD_DIR" -j "$JOBS" --output-on-failure --timeout 900
}

# A local 3-broker cluster on 127.0.0.1: clients on 9091-9093, brokers talk on 9191-9193, data
# and logs under $DATA_DIR. Starting it again reuses the data (the cluster resumes).
CLIENT_PORTS=(9091 9092 9093)
RAFT_PORTS=(9191 9192 9193)

cluster_running() {
  [ -f "$DATA_DIR/pids" ] || return 1
  while read -r pid; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && return 0
  done <"$DATA_DIR/pids"
  return 1
}

cmd_up() {
  build --target skiffd skiff
  if cluster_running; then
    log "a local cluster is already running (./skiff.sh down stops it)"
  else
    mkdir -p "$DATA_DIR"
    : >"$DATA_DIR/pids"
    local voters="1@127.0.0.1:${RAFT_PORTS[0]},2@127.0.0.1:${RAFT_PORTS[1]},3@127.0.0.1:${RAFT_PORTS[2]}"
    for i in 1 2 3; do
      "$BUILD_DIR/skiffd" --broker_id="$i" --data_dir="$DATA_DIR/broker$i" \
        --listen="127.0.0.1:${CLIENT_PORTS[$((i - 1))]}" \
        --raft_listen="127.0.0.1:${RAFT_PORTS[$((i - 1))]}" \
        --rack="rack$i" --metadata_voters="$voters" >>"$DATA_DIR/broker$i.log" 2>&1 &
      echo $! >>"$DATA_DIR/pids"
    done
    log "started brokers 1-3 (logs: $DATA_DIR/broker*.log); waiting for the cluster"
  fi
  local brokers="127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093"
  local ok=0
  for _ in $(seq 1 100); do
    if "$BUILD_DIR/skiff" --brokers "$brokers" cluster info >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  if [ "$ok" != 1 ]; then
    log "the cluster did not answer within 20 s; see $DATA_DIR/broker*.log"
    return 1
  fi
  "$BUILD_DIR/skiff" --brokers "$brokers" cluster info || true
  cat <<MSG

Skiff is running: 3 brokers on 127.0.0.1:9091-9093 (data in $DATA_DIR).
Try:
  $BUILD_DIR/skiff topic create demo --partitions 3 --replication-factor 3
  seq 1 5 | $BUILD_DIR/skiff produce demo --partition 0
  $BUILD_DIR/skiff consume demo --partition 0 --offset earliest --max-records 5
  $BUILD_DIR/skiff bench --topic bench --create --partitions 16 --producers 4 --seconds 10
Stop it with ./skiff.sh down.
MSG
}

cmd_down() {
  local pids_file="$DATA_DIR/pids"
  if [ ! -f "$pids_file" ]; then log "no local cluster recorded in $pids_file"; return 0; fi
  local pids=()
  while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && pids+=("$pid") && log "stopping pid $pid"
  done <"$pids_file"
  # SIGTERM hands leaderships over first; give it a bounded time, then insist.
  for _ in $(seq 1 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -f "$pids_file"
}

cmd_soak() {
  build --target raft_sim
  local seconds="${SOAK_SECONDS:-600}"
  log "Raft simulation soak for ${seconds}s"
  "$BUILD_DIR/tests/sim/raft_sim" --time_limit_s="$seconds" "$@"
}

# Chaos soak: tests/chaos/chaos.py runs a random mix of every scenario (real skiffd, kill -9,
# SIGSTOP, iptables, power cuts) until the time is up; the scenario running then finishes (a
# few minutes at most). Extra arguments go to chaos.py run (e.g. --seed N, --duration 120;
# --net netns puts each broker in its own network namespace, --brokers 5 runs five brokers
# with the topic still at replication factor 3: see tests/chaos/README.md).
cmd_soak_cluster() {
  local minutes=30
  while [ $# -gt 0 ]; do
    case "$1" in
      --minutes) minutes="$2"; shift 2 ;;
      --minutes=*) minutes="${1#*=}"; shift ;;
      *) break ;;
    esac
  done
  build --target skiffd
  log "chaos soak: a random mix of scenarios for ${minutes} min"
  /usr/bin/python3 tests/chaos/chaos.py run --skiffd "$BUILD_DIR/skiffd" --proto-dir proto \
    --scenarios all --soak-s "$((minutes * 60))" --evidence-dir "$ROOT/$BUILD_DIR/chaos-evidence" "$@"
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
  soak-cluster) shift; cmd_soak_cluster "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  perf) shift; build --target skiffd skiff; "$ROOT/tools/perf_goals.sh" "$BUILD_DIR" "$@" ;;
  build) shift; build "$@" ;;
  format) cmd_format ;;
  clean) cmd_down; rm -rf "$BUILD_DIR" "$DATA_DIR" ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
