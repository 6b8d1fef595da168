#include "raft/raft_log.h"

#include <algorithm>
#include <string>

#include "common/assert.h"

namespace skiff::raft {

RaftLog::RaftLog(const LogStorage* storage) : storage_(storage) {
  unstable_offset_ = storage_->LastIndex() + 1;
  committed_ = storage_->FirstIndex() - 1;
  applying_ = applied_ = committed_;
}

void RaftLog::Restore(Index committed, Index applied) {
  const Index snap = storage_->FirstIndex() - 1;
  committed_ = std::max(committed, snap);
  SKIFF_ASSERT_MSG(committed_ <= LastIndex(), "hard state commit beyond the stored log");
  applied_ = applying_ = std::max(applied, snap);
  SKIFF_ASSERT_MSG(applied_ <= committed_, "applied beyond commit");
}

Index RaftLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->meta.index + 1;
  return storage_->FirstIndex();
}

Index RaftLog::LastIndex() const {
  if (!unstable_entries_.empty()) return unstable_offset_ + unstable_entries_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->meta.index;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const {
  auto t = TermAt(LastIndex());
  SKIFF_ASSERT_MSG(t.has_value(), "term of the last index must be known");
  return *t;
}

std::optional<Term> RaftLog::UnstableTerm(Index i) const {
  if (i >= unstable_offset_ && i < unstable_offset_ + unstable_entries_.size()) {
    return unstable_entries_[i - unstable_offset_].term;
  }
  if (unstable_snapshot_ && unstable_snapshot_->meta.index == i) {
    return unstable_snapshot_->meta.term;
  }
  return std::nullopt;
}

std::optional<Term> RaftLog::TermAt(Index i) const {
  if (i == 0) return Term{0};
  if (i > LastIndex()) return std::nullopt;
  if (auto t = UnstableTerm(i)) return t;
  if (unstable_snapshot_) return std::nullopt;  // below the pending snapshot: gone
  if (i < storage_->FirstIndex() - 1) return std::nullopt;
  auto r = storage_->TermAt(i);
  if (r.ok()) return *r;
  SKIFF_ASSERT_MSG(r.status().code() == StatusCode::kOutOfRange, "storage TermAt failed");
  return std::nullopt;
}

bool RaftLog::MatchTerm(Index i, Term t) const {
  auto term = TermAt(i);
  return term.has_value() && *term == t;
}

bool RaftLog::IsUpToDate(Index last_index, Term last_term) const {
  const Term our = LastTerm();
  return last_term > our || (last_term == our && last_index >= LastIndex());
}

std::optional<Index> RaftLog::MaybeAppend(Index prev_index, Term prev_term,
                                          const std::vector<Entry>& entries) {
  if (!MatchTerm(prev_index, prev_term)) return std::nullopt;
  const Index last_new = prev_index + entries.size();
  const Index conflict = FindConflict(entries);
  if (conflict != 0) {
    if (conflict <= committed_ && tolerate_divergence_) return std::nullopt;
    SKIFF_ASSERT_MSG(conflict > committed_, "a leader tried to overwrite a committed entry");
    std::vector<Entry> suffix(
        entries.begin() + static_cast<std::ptrdiff_t>(conflict - prev_index - 1), entries.end());
    Append(suffix);
  }
  return last_new;
}

Index RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  const Index after = entries.front().index;
  SKIFF_ASSERT_MSG(after > committed_, "appending over committed entries");
  SKIFF_ASSERT_MSG(after <= LastIndex() + 1, "gap in the log");
  if (after == unstable_offset_ + unstable_entries_.size()) {
    unstable_entries_.insert(unstable_entries_.end(), entries.begin(), entries.end());
  } else if (after <= unstable_offset_) {
    // Replaces everything unstable and (for the host) a stored suffix from `after` on.
    unstable_offset_ = after;
    unstable_entries_ = entries;
  } else {
    unstable_entries_.resize(after - unstable_offset_);
    unstable_entries_.insert(unstable_entries_.end(), entries.begin(), entries.end());
  }
  return LastIndex();
}

Index RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (MatchTerm(e.index, e.term)) continue;
    if (e.index > LastIndex()) return e.index;  // new entry
    // A compacted entry is committed and so cannot conflict; anything else is a conflict.
    if (TermAt(e.index).has_value()) return e.index;
  }
  return 0;
}

Index RaftLog::FindConflictByTerm(Index index, Term term) const {
  index = std::min(index, LastIndex());
  while (index > 0) {
    auto t = TermAt(index);
    if (!t.has_value()) break;  // compacted: cannot look further back
    if (*t <= term) return index;
    --index;
  }
  return index;
}

void RaftLog::CommitTo(Index index) {
  if (index <= committed_) return;  // commit never decreases
  SKIFF_ASSERT_MSG(index <= LastIndex(), "commit beyond the last index");
  committed_ = index;
}

bool RaftLog::MaybeCommit(Index index, Term term) {
  if (index > committed_ && MatchTerm(index, term)) {
    CommitTo(index);
    return true;
  }
  return false;
}

Result<std::vector<Entry>> RaftLog::Slice(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo >= hi) return std::vector<Entry>{};
  if (lo < FirstIndex()) return OutOfRangeError("compacted");
  SKIFF_ASSERT(hi <= LastIndex() + 1);
  std::vector<Entry> out;
  uint64_t bytes = 0;
  // Stored part.
  if (lo < unstable_offset_) {
    const Index stored_hi = std::min(hi, unstable_offset_);
    auto r = storage_->Entries(lo, stored_hi, max_bytes);
    if (!r.ok()) {
      if (r.status().code() != StatusCode::kOutOfRange) {
        // Not a Skiff bug but damaged storage (a checksum mismatch): the replica cannot serve
        // or replicate its log, and must not guess. Stop, saying which entries and why.
        const std::string why = "reading stored entries [" + std::to_string(lo) + ", " +
                                std::to_string(stored_hi) + ") failed: " + r.status().ToString() +
                                "; this replica's log is damaged and it cannot continue";
        ::skiff::detail::AssertFailed("storage read", __FILE__, __LINE__, why.c_str());
      }
      return r.status();
    }
    out = std::move(r).value();
    for (const Entry& e : out) bytes += e.SizeBytes();
    if (out.size() < stored_hi - lo) return out;  // size limit reached
  }
  // Unstable part.
  for (Index i = std::max(lo, unstable_offset_); i < hi; ++i) {
    const Entry& e = unstable_entries_[i - unstable_offset_];
    if (!out.empty() && bytes + e.SizeBytes() > max_bytes) break;
    bytes += e.SizeBytes();
    out.push_back(e);
  }
  return out;
}

bool RaftLog::HasNextCommittedEntries() const {
  return !unstable_snapshot_ && committed_ > applying_;
}

std::vector<Entry> RaftLog::NextCommittedEntries(uint64_t max_bytes) const {
  if (!HasNextCommittedEntries()) return {};
  auto r = Slice(applying_ + 1, committed_ + 1, max_bytes);
  SKIFF_ASSERT_MSG(r.ok(), "committed, unapplied entries must be readable");
  return std::move(r).value();
}

void RaftLog::AcceptApplying(Index index) {
  SKIFF_ASSERT(index <= committed_);
  applying_ = std::max(applying_, index);
}

void RaftLog::AppliedTo(Index index) {
  if (index <= applied_) return;
  SKIFF_ASSERT_MSG(index <= committed_, "applied beyond commit");
  applied_ = index;
  applying_ = std::max(applying_, applied_);
}

Index RaftLog::StableLastIndex() const {
  // While a snapshot is pending nothing is known durable (the host is replacing the log).
  if (unstable_snapshot_) return 0;
  return unstable_offset_ - 1;
}

void RaftLog::StableTo(Index index, Term term) {
  auto t = UnstableTerm(index);
  if (!t.has_value() || *t != term || index < unstable_offset_) return;
  unstable_entries_.erase(
      unstable_entries_.begin(),
      unstable_entries_.begin() + static_cast<std::ptrdiff_t>(index - unstable_offset_ + 1));
  unstable_offset_ = index + 1;
}

void RaftLog::StableSnapTo(Index index) {
  if (unstable_snapshot_ && unstable_snapshot_->meta.index == index) unstable_snapshot_.reset();
}

void RaftLog::RestoreSnapshot(const Snapshot& snapshot) {
  SKIFF_ASSERT_MSG(snapshot.meta.index > committed_, "restoring a snapshot below commit");
  committed_ = snapshot.meta.index;
  unstable_snapshot_ = snapshot;
  unstable_entries_.clear();
  unstable_offset_ = snapshot.meta.index + 1;
}

Result<Snapshot> RaftLog::GetSnapshot() const {
  if (unstable_snapshot_) return *unstable_snapshot_;
  return storage_->GetSnapshot();
}

}  // namespace skiff::raft
