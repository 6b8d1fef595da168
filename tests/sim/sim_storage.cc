#include "sim_storage.h"

#include <cstring>
#include <string>
#include <utility>

namespace skiff::sim {

namespace {

uint64_t HashBytes(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then a final mix
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; i++) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetU64(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; i++)
    *v |= static_cast<uint64_t>(static_cast<unsigned char>((*in)[i])) << (8 * i);
  in->remove_prefix(8);
  return true;
}

void PutIds(std::string* out, const std::vector<raft::NodeId>& ids) {
  PutU64(out, ids.size());
  for (raft::NodeId id : ids) PutU64(out, id);
}

bool GetIds(std::string_view* in, std::vector<raft::NodeId>* ids) {
  uint64_t n = 0;
  if (!GetU64(in, &n) || n > 64) return false;
  ids->resize(n);
  for (uint64_t i = 0; i < n; i++) {
    if (!GetU64(in, &(*ids)[i])) return false;
  }
  return true;
}

constexpr uint64_t kSnapshotMagic = 0x534b494646534d31ULL;  // "SKIFFSM1"

}  // namespace

uint64_t SimStateMachine::EntryDigest(const raft::Entry& e) {
  return Mix64(HashBytes(e.data.view()) ^ (static_cast<uint64_t>(e.type) << 56));
}

void SimStateMachine::Apply(const raft::Entry& e) {
  SKIFF_ASSERT(e.index == applied + 1);
  chain_hash =
      Mix64(chain_hash ^ Mix64(e.index) ^ Mix64(e.term * 0x9e3779b97f4a7c15ULL) ^ EntryDigest(e));
  applied = e.index;
  applied_term = e.term;
}

SimStateMachine SimStateMachine::FromEmptySnapshot(const raft::SnapshotMeta& meta) {
  SimStateMachine sm;
  sm.applied = meta.index;
  sm.applied_term = meta.term;
  sm.chain_hash = Mix64(0xb007ULL ^ Mix64(meta.index) ^ Mix64(meta.term * 31));
  sm.conf = meta.conf;
  return sm;
}

Bytes SimStateMachine::Encode() const {
  std::string out;
  PutU64(&out, kSnapshotMagic);
  PutU64(&out, applied);
  PutU64(&out, applied_term);
  PutU64(&out, chain_hash);
  PutIds(&out, conf.voters);
  PutIds(&out, conf.learners);
  return Bytes(std::move(out));
}

std::optional<SimStateMachine> SimStateMachine::Decode(std::string_view data) {
  SimStateMachine sm;
  uint64_t magic = 0;
  if (!GetU64(&data, &magic) || magic != kSnapshotMagic) return std::nullopt;
  if (!GetU64(&data, &sm.applied) || !GetU64(&data, &sm.applied_term) ||
      !GetU64(&data, &sm.chain_hash) || !GetIds(&data, &sm.conf.voters) ||
      !GetIds(&data, &sm.conf.learners) || !data.empty()) {
    return std::nullopt;
  }
  return sm;
}

Status SimStorage::ApplyUnit(const Unit& unit, raft::MemoryLogStorage* log, SimStateMachine* sm) {
  if (unit.is_checkpoint) {
    log->SetConfState(unit.sm.conf);
    *sm = unit.sm;
    return Status::Ok();
  }
  if (unit.snapshot.has_value()) {
    SKIFF_RETURN_IF_ERROR(log->ApplySnapshot(*unit.snapshot));
    log->SetConfState(unit.snapshot->meta.conf);
    *sm = unit.sm;
  }
  if (!unit.entries.empty()) SKIFF_RETURN_IF_ERROR(log->Append(unit.entries));
  if (unit.hard_state.has_value()) log->SetHardState(*unit.hard_state);
  return Status::Ok();
}

Status SimStorage::PersistReady(const std::optional<raft::Snapshot>& snapshot,
                                const SimStateMachine* sm_after_snapshot,
                                const std::vector<raft::Entry>& entries,
                                const std::optional<raft::HardState>& hard_state) {
  if (!snapshot.has_value() && entries.empty() && !hard_state.has_value()) return Status::Ok();
  Unit unit;
  unit.snapshot = snapshot;
  if (snapshot.has_value()) {
    SKIFF_ASSERT(sm_after_snapshot != nullptr);
    unit.sm = *sm_after_snapshot;
  }
  unit.entries = entries;
  unit.hard_state = hard_state;
  SKIFF_RETURN_IF_ERROR(ApplyUnit(unit, &visible_, &visible_sm_));
  pending_.push_back(std::move(unit));
  return Status::Ok();
}

void SimStorage::Checkpoint(const SimStateMachine& sm) {
  Unit unit;
  unit.is_checkpoint = true;
  unit.sm = sm;
  ApplyUnit(unit, &visible_, &visible_sm_).IgnoreError();  // a checkpoint cannot fail
  pending_.push_back(std::move(unit));
}

Status SimStorage::Sync() {
  for (const Unit& unit : pending_) SKIFF_RETURN_IF_ERROR(ApplyUnit(unit, &durable_, &durable_sm_));
  pending_.clear();
  return Status::Ok();
}

Status SimStorage::Crash(SimRandom* random) {
  return CrashKeeping(pending_.empty() ? 0 : random->Below(pending_.size() + 1));
}

Status SimStorage::CrashLosingAllUnsynced() { return CrashKeeping(0); }

Status SimStorage::CrashKeeping(size_t keep) {
  SKIFF_ASSERT(keep <= pending_.size());
  for (size_t i = 0; i < keep; i++) {
    SKIFF_RETURN_IF_ERROR(ApplyUnit(pending_[i], &durable_, &durable_sm_));
  }
  pending_.clear();
  visible_ = durable_;
  visible_sm_ = durable_sm_;
  return Status::Ok();
}

Status SimStorage::SnapshotAndCompact(const SimStateMachine& sm, raft::Index compact_index) {
  SKIFF_ASSERT(compact_index <= sm.applied);
  SKIFF_RETURN_IF_ERROR(Sync());
  Checkpoint(sm);
  SKIFF_RETURN_IF_ERROR(Sync());
  for (raft::MemoryLogStorage* log : {&visible_, &durable_}) {
    SKIFF_RETURN_IF_ERROR(log->CreateSnapshot(sm.applied, sm.conf, sm.Encode()));
    if (compact_index >= log->FirstIndex()) SKIFF_RETURN_IF_ERROR(log->Compact(compact_index));
  }
  return Status::Ok();
}

void SimStorage::SetInitialConf(const raft::ConfState& conf) {
  visible_.SetConfState(conf);
  durable_.SetConfState(conf);
  visible_sm_.conf = conf;
  durable_sm_.conf = conf;
}

}  // namespace skiff::sim
