#!/usr/bin/env bash
# Measures the broker's performance goals (issue: throughput, one-in-flight latency, idle cost)
# on a throwaway local 3-broker cluster, the way the README's figures were taken. Prints figures;
# asserts nothing. Usage: tools/perf_goals.sh [BUILD_DIR] [-- extra skiffd flags...]
#   PERF_SECONDS (10) bench length; PERF_IDLE_PARTITIONS (10000) partitions for the idle check
#   (0 skips it); PERF_BASE_PORT (29000) first port (6 are used).
set -euo pipefail

BUILD_DIR="${1:-build}"
shift || true
[ "${1:-}" = "--" ] && shift
EXTRA_FLAGS=("$@")
SECONDS_PER_RUN="${PERF_SECONDS:-10}"
IDLE_PARTITIONS="${PERF_IDLE_PARTITIONS:-10000}"
BASE="${PERF_BASE_PORT:-29000}"
SKIFFD="$BUILD_DIR/skiffd"
SKIFF="$BUILD_DIR/skiff"
for bin in "$SKIFFD" "$SKIFF"; do
  [ -x "$bin" ] || { echo "perf_goals: $bin not built (./skiff.sh build)" >&2; exit 2; }
done

DATA="$(mktemp -d /tmp/skiff-perf-XXXXXX)"
PIDS=()
BROKERS="127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))"

stop_cluster() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  PIDS=()
}
cleanup() { stop_cluster; rm -rf "$DATA"; }
trap cleanup EXIT

start_cluster() {
  stop_cluster
  rm -rf "$DATA"/b*
  local voters="1@127.0.0.1:$((BASE + 11)),2@127.0.0.1:$((BASE + 12)),3@127.0.0.1:$((BASE + 13))"
  for i in 1 2 3; do
    "$SKIFFD" --broker_id="$i" --data_dir="$DATA/b$i" --listen="127.0.0.1:$((BASE + i))" \
      --raft_listen="127.0.0.1:$((BASE + 10 + i))" --rack="rack$i" --metadata_voters="$voters" \
      "${EXTRA_FLAGS[@]}" >>"$DATA/broker$i.log" 2>&1 &
    PIDS+=($!)
  done
  for _ in $(seq 1 100); do
    "$SKIFF" --brokers "$BROKERS" cluster info >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "perf_goals: the cluster did not start; logs in $DATA" >&2
  trap - EXIT
  stop_cluster
  exit 1
}

# Sum of user+system CPU ticks of the brokers (clock ticks, usually 100 per second).
broker_ticks() {
  local total=0
  for pid in "${PIDS[@]}"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

echo "== throughput: 16 partitions, 2 producers, 1 KiB records, 1 MiB batches, acks=all, RF 3"
start_cluster
t0=$(broker_ticks)
out=$("$SKIFF" --brokers "$BROKERS" bench --topic tput --create --partitions 16 \
  --replication-factor 3 --producers 2 --record-size 1024 --batch-kib 1024 \
  --seconds "$SECONDS_PER_RUN" 2>&1)
t1=$(broker_ticks)
echo "$out" | sed -n 2,3p
acked=$(echo "$out" | grep -oE '[0-9]+ acked' | cut -d' ' -f1)
if [ "${acked:-0}" -gt 0 ]; then
  hz=$(getconf CLK_TCK)
  echo "  broker CPU per MB produced: $(((t1 - t0) * 1000 * 1048576 / hz / (acked * 1024))) ms"
fi

echo "== latency: one record in flight, acks=all, RF 3"
start_cluster
"$SKIFF" --brokers "$BROKERS" topic create lat --partitions 1 --replication-factor 3 >/dev/null
sleep 1
"$SKIFF" --brokers "$BROKERS" bench --topic lat --partitions 1 --producers 1 --record-size 1024 \
  --outstanding 1 --linger-ms 0 --seconds "$SECONDS_PER_RUN" 2>&1 | sed -n 3p

if [ "$IDLE_PARTITIONS" -gt 0 ]; then
  echo "== idle: $IDLE_PARTITIONS partitions (RF 3), settled 60 s, CPU of the 3 brokers over 30 s"
  start_cluster
  remaining=$IDLE_PARTITIONS
  t=0
  while [ "$remaining" -gt 0 ]; do
    n=$((remaining < 1000 ? remaining : 1000))
    t=$((t + 1))
    "$SKIFF" --brokers "$BROKERS" topic create "idle$t" --partitions "$n" \
      --replication-factor 3 >/dev/null
    remaining=$((remaining - n))
  done
  sleep 60
  t0=$(broker_ticks)
  sleep 30
  t1=$(broker_ticks)
  hz=$(getconf CLK_TCK)
  echo "  $(awk -v d=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.2f", 100 * d / hz / 30 }')% of one core"
fi
