#include "raft/memory_log_storage.h"

#include <string>

namespace skiff::raft {

MemoryLogStorage::MemoryLogStorage() : entries_(1) {}

Result<InitialState> MemoryLogStorage::GetInitialState() const {
  return InitialState{hard_state_, conf_state_};
}

Index MemoryLogStorage::FirstIndex() const { return entries_.front().index + 1; }

Index MemoryLogStorage::LastIndex() const { return entries_.front().index + entries_.size() - 1; }

Result<Term> MemoryLogStorage::TermAt(Index i) const {
  const Index offset = entries_.front().index;
  if (i < offset || i > LastIndex()) {
    return OutOfRangeError("term of index " + std::to_string(i) + " not stored");
  }
  return entries_[i - offset].term;
}

Result<std::vector<Entry>> MemoryLogStorage::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo < FirstIndex()) return OutOfRangeError("entries compacted below " + std::to_string(lo));
  if (hi > LastIndex() + 1 || lo > hi) {
    return OutOfRangeError("entries [" + std::to_string(lo) + "," + std::to_string(hi) +
                           ") beyond the log");
  }
  std::vector<Entry> out;
  const Index offset = entries_.front().index;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset];
    if (!out.empty() && bytes + e.SizeBytes() > max_bytes) break;
    bytes += e.SizeBytes();
    out.push_back(e);
  }
  return out;
}

Result<Snapshot> MemoryLogStorage::GetSnapshot() const { return snapshot_; }

Status MemoryLogStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::Ok();
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != entries[i - 1].index + 1) {
      return InvalidArgumentError("entries not contiguous");
    }
  }
  const Index first = entries.front().index;
  if (first > LastIndex() + 1) {
    return InvalidArgumentError("gap: appending " + std::to_string(first) + " after " +
                                std::to_string(LastIndex()));
  }
  const Index offset = entries_.front().index;
  size_t skip = 0;
  while (skip < entries.size() && entries[skip].index <= offset) ++skip;
  if (skip == entries.size()) return Status::Ok();
  const Index from = entries[skip].index;
  entries_.resize(from - offset);
  entries_.insert(entries_.end(), entries.begin() + static_cast<std::ptrdiff_t>(skip),
                  entries.end());
  return Status::Ok();
}

Status MemoryLogStorage::ApplySnapshot(const Snapshot& snapshot) {
  if (snapshot.meta.index < snapshot_.meta.index) {
    return OutOfRangeError("snapshot at " + std::to_string(snapshot.meta.index) + " older than " +
                           std::to_string(snapshot_.meta.index));
  }
  snapshot_ = snapshot;
  entries_.assign(1, Entry{});
  entries_.front().index = snapshot.meta.index;
  entries_.front().term = snapshot.meta.term;
  conf_state_ = snapshot.meta.conf;
  return Status::Ok();
}

Status MemoryLogStorage::CreateSnapshot(Index index, const ConfState& conf, Bytes data) {
  if (index < snapshot_.meta.index) {
    return OutOfRangeError("snapshot index " + std::to_string(index) + " below current");
  }
  if (index > LastIndex()) return OutOfRangeError("snapshot index beyond the log");
  if (index < entries_.front().index) return OutOfRangeError("snapshot index compacted");
  snapshot_.meta.index = index;
  snapshot_.meta.term = entries_[index - entries_.front().index].term;
  snapshot_.meta.conf = conf;
  snapshot_.data = std::move(data);
  return Status::Ok();
}

Status MemoryLogStorage::Compact(Index index) {
  const Index offset = entries_.front().index;
  if (index <= offset) return Status::Ok();  // already compacted: idempotent
  if (index > LastIndex()) return OutOfRangeError("compact beyond the log");
  if (index > snapshot_.meta.index) {
    return FailedPreconditionError("compact to " + std::to_string(index) +
                                   " beyond the snapshot at " +
                                   std::to_string(snapshot_.meta.index));
  }
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(index - offset));
  // entries_[0] (formerly the entry at `index`) becomes the dummy; drop its payload.
  entries_.front().data = Bytes();
  entries_.front().type = EntryType::kNormal;
  return Status::Ok();
}

}  // namespace skiff::raft
