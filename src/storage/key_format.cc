#include "storage/key_format.h"
#include "common/coding.h"

#include <cstring>

#include "common/crc32c.h"

namespace skiff::storage {
namespace {

void PutBigEndian64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

uint64_t GetBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// Consumes fixed-size fields from a body; any short read makes ok() false for good.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  uint8_t U8() {
    if (!Need(1)) return 0;
    uint8_t v = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return v;
  }
  uint32_t U32() {
    if (!Need(4)) return 0;
    uint32_t v = GetFixed32(data_.data());
    data_.remove_prefix(4);
    return v;
  }
  uint64_t U64() {
    if (!Need(8)) return 0;
    uint64_t v = GetFixed64(data_.data());
    data_.remove_prefix(8);
    return v;
  }
  std::string_view Rest() {
    std::string_view rest = data_;
    data_ = {};
    return rest;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && data_.empty(); }

 private:
  bool Need(size_t n) {
    if (data_.size() < n) ok_ = false;
    return ok_;
  }
  std::string_view data_;
  bool ok_ = true;
};

constexpr uint8_t kEntryFormat = 1;

Status Malformed(std::string_view what) {
  return CorruptionError("malformed " + std::string(what));
}

}  // namespace

std::string IndexedKey(uint64_t group, uint64_t n) {
  std::string key;
  key.reserve(kIndexedKeySize);
  PutBigEndian64(key, group);
  PutBigEndian64(key, n);
  return key;
}

std::optional<std::pair<uint64_t, uint64_t>> DecodeIndexedKey(std::string_view key) {
  if (key.size() != kIndexedKeySize) return std::nullopt;
  return std::make_pair(GetBigEndian64(key.data()), GetBigEndian64(key.data() + 8));
}

std::string StateKey(uint64_t group, StateTag tag) {
  std::string key = GroupKey(group);
  key.push_back(static_cast<char>(tag));
  return key;
}

std::string GroupKey(uint64_t group) {
  std::string key;
  key.reserve(kGroupKeySize + 1);
  PutBigEndian64(key, group);
  return key;
}

std::string Seal(std::string_view body) {
  std::string out;
  out.reserve(4 + body.size());
  PutFixed32(out, Crc32c(body));
  out.append(body);
  return out;
}

Result<std::string_view> Unseal(std::string_view value, std::string_view what) {
  if (value.size() < 4) return CorruptionError(std::string(what) + ": value shorter than its CRC");
  const uint32_t stored = GetFixed32(value.data());
  std::string_view body = value.substr(4);
  if (Crc32c(body) != stored) return CorruptionError(std::string(what) + ": CRC32C mismatch");
  return body;
}

std::string EncodeEntryHeader(const raft::Entry& entry, uint64_t base_offset,
                              const EntryRecordInfo& info) {
  std::string out(4, '\0');
  out.reserve(kEntryHeaderSize);
  out.push_back(static_cast<char>(kEntryFormat));
  out.push_back(static_cast<char>(entry.type));
  PutFixed64(out, entry.term);
  PutFixed64(out, base_offset);
  PutFixed32(out, info.record_count);
  PutFixed64(out, static_cast<uint64_t>(info.max_timestamp_ms));
  uint32_t crc = Crc32c(out.data() + 4, out.size() - 4);
  crc = Crc32cExtend(crc, entry.data.data(), entry.data.size());
  std::string crc_bytes;
  PutFixed32(crc_bytes, crc);
  out.replace(0, 4, crc_bytes);
  return out;
}

Result<StoredEntry> DecodeEntryBody(std::string_view body, raft::Index index) {
  Reader r(body);
  const uint8_t format = r.U8();
  const uint8_t type = r.U8();
  StoredEntry out;
  out.entry.index = index;
  out.entry.term = r.U64();
  out.base_offset = r.U64();
  out.info.record_count = r.U32();
  out.info.max_timestamp_ms = static_cast<int64_t>(r.U64());
  if (!r.ok() || format != kEntryFormat ||
      type > static_cast<uint8_t>(raft::EntryType::kConfChange)) {
    return Malformed("log entry");
  }
  out.entry.type = static_cast<raft::EntryType>(type);
  std::string_view data = r.Rest();
  if (!data.empty()) out.entry.data = Bytes(data);
  return out;
}

Result<StoredEntry> DecodeEntryHeaderOnly(std::string_view body, raft::Index index,
                                          uint64_t* data_size) {
  const size_t header = kEntryHeaderSize - 4;  // the body starts after the CRC
  if (body.size() < header) return Malformed("log entry");
  auto decoded = DecodeEntryBody(body.substr(0, header), index);
  if (decoded.ok()) *data_size = body.size() - header;
  return decoded;
}

Result<raft::Term> DecodeEntryTerm(std::string_view body) {
  Reader r(body);
  const uint8_t format = r.U8();
  r.U8();
  const raft::Term term = r.U64();
  if (!r.ok() || format != kEntryFormat) return Malformed("log entry");
  return term;
}

std::string EncodeOffsetRow(const OffsetRow& row) {
  std::string out;
  PutFixed64(out, row.first_index);
  PutFixed64(out, row.last_index);
  PutFixed32(out, row.record_count);
  PutFixed64(out, static_cast<uint64_t>(row.max_timestamp_ms));
  PutFixed64(out, static_cast<uint64_t>(row.min_batch_timestamp_ms));
  PutFixed64(out, row.size_bytes);
  return out;
}

Result<OffsetRow> DecodeOffsetRow(std::string_view body) {
  constexpr size_t kOneBatchRowSize = 8 + 4 + 8 + 4;
  Reader r(body);
  OffsetRow row;
  if (body.size() == kOneBatchRowSize) {
    row.first_index = row.last_index = r.U64();
    row.record_count = r.U32();
    row.max_timestamp_ms = row.min_batch_timestamp_ms = static_cast<int64_t>(r.U64());
    row.size_bytes = r.U32();
  } else {
    row.first_index = r.U64();
    row.last_index = r.U64();
    row.record_count = r.U32();
    row.max_timestamp_ms = static_cast<int64_t>(r.U64());
    row.min_batch_timestamp_ms = static_cast<int64_t>(r.U64());
    row.size_bytes = r.U64();
  }
  if (!r.done() || row.record_count == 0 || row.first_index == 0 ||
      row.last_index < row.first_index) {
    return Malformed("offset index row");
  }
  return row;
}

std::string EncodeLogMeta(const LogMeta& meta) {
  std::string out;
  PutFixed64(out, meta.compacted_index);
  PutFixed64(out, meta.compacted_term);
  PutFixed64(out, meta.log_start_offset);
  return out;
}

Result<LogMeta> DecodeLogMeta(std::string_view body) {
  Reader r(body);
  LogMeta meta;
  meta.compacted_index = r.U64();
  meta.compacted_term = r.U64();
  meta.log_start_offset = r.U64();
  if (!r.done()) return Malformed("log meta");
  return meta;
}

std::string EncodeHardState(const raft::HardState& hs) {
  std::string out;
  PutFixed64(out, hs.term);
  PutFixed64(out, hs.vote);
  PutFixed64(out, hs.commit);
  return out;
}

Result<raft::HardState> DecodeHardState(std::string_view body) {
  Reader r(body);
  raft::HardState hs;
  hs.term = r.U64();
  hs.vote = r.U64();
  hs.commit = r.U64();
  if (!r.done()) return Malformed("hard state");
  return hs;
}

namespace {
void PutIds(std::string& out, const std::vector<raft::NodeId>& ids) {
  PutFixed32(out, static_cast<uint32_t>(ids.size()));
  for (raft::NodeId id : ids) PutFixed64(out, id);
}
bool GetIds(Reader& r, std::vector<raft::NodeId>& ids) {
  const uint32_t n = r.U32();
  if (!r.ok() || n > (1u << 16)) return false;
  ids.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) ids.push_back(r.U64());
  return r.ok();
}
}  // namespace

std::string EncodeConfState(const raft::ConfState& cs) {
  std::string out;
  PutIds(out, cs.voters);
  PutIds(out, cs.learners);
  return out;
}

Result<raft::ConfState> DecodeConfState(std::string_view body) {
  Reader r(body);
  raft::ConfState cs;
  if (!GetIds(r, cs.voters) || !GetIds(r, cs.learners) || !r.done()) {
    return Malformed("conf state");
  }
  return cs;
}

std::string EncodeU64(uint64_t v) {
  std::string out;
  PutFixed64(out, v);
  return out;
}

Result<uint64_t> DecodeU64(std::string_view body) {
  Reader r(body);
  const uint64_t v = r.U64();
  if (!r.done()) return Malformed("u64");
  return v;
}

std::string EncodeSnapshotMeta(const StoredSnapshotMeta& meta) {
  std::string out;
  PutFixed64(out, meta.meta.index);
  PutFixed64(out, meta.meta.term);
  PutFixed64(out, meta.next_offset);
  PutIds(out, meta.meta.conf.voters);
  PutIds(out, meta.meta.conf.learners);
  return out;
}

Result<StoredSnapshotMeta> DecodeSnapshotMeta(std::string_view body) {
  Reader r(body);
  StoredSnapshotMeta meta;
  meta.meta.index = r.U64();
  meta.meta.term = r.U64();
  meta.next_offset = r.U64();
  if (!GetIds(r, meta.meta.conf.voters) || !GetIds(r, meta.meta.conf.learners) || !r.done()) {
    return Malformed("snapshot meta");
  }
  return meta;
}

}  // namespace skiff::storage
