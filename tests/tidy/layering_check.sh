#!/usr/bin/env bash
# Enforces the dependency direction raft <- storage <- broker, and that src/raft stays pure:
# no threads, clocks, sockets, files, logging framework, gRPC, protobuf or RocksDB in there.
# Usage: layering_check.sh <src dir>
set -euo pipefail
src="${1:?usage: layering_check.sh <src dir>}"
fail=0
check() {  # check <dir> <description> <extended regex of forbidden #include targets>
  local dir="$1" what="$2" pattern="$3"
  [ -d "$src/$dir" ] || return 0
  local hits
  hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($pattern)" "$src/$dir" || true)
  if [ -n "$hits" ]; then
    echo "layering violation: src/$dir must not include $what:"
    echo "$hits" | sed 's/^/  /'
    fail=1
  fi
}
check raft "threads, clocks, I/O, glog, gRPC, protobuf, RocksDB or upper layers" \
  'thread|mutex|shared_mutex|condition_variable|future|chrono|ctime|time\.h|fstream|filesystem|cstdio|stdio\.h|iostream|random|unistd\.h|sys/|netinet/|glog/|gflags/|grpc|google/protobuf|rocksdb/|storage/|broker/|client/|skiff/v1/|skiff/internal/'
check common "upper layers" 'raft/|storage/|broker/|client/'
check storage "the broker, the client or gRPC" 'broker/|client/|grpc'
check client "the broker or storage" 'broker/|storage/|rocksdb/'
if [ "$fail" -eq 0 ]; then echo "layering check: OK"; fi
exit "$fail"
