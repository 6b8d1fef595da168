// Helpers shared by the storage tests: a temp dir removed on scope exit, and entry builders.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "raft/types.h"
#include "storage/key_format.h"

namespace skiff::storage::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "skiff_storage_XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline raft::Entry MakeEntry(raft::Index index, raft::Term term, std::string data,
                             raft::EntryType type = raft::EntryType::kNormal) {
  raft::Entry e;
  e.index = index;
  e.term = term;
  e.type = type;
  if (!data.empty()) e.data = Bytes(std::move(data));
  return e;
}

// Entries [from, to] in `term`, each a distinct payload.
inline std::vector<raft::Entry> MakeEntries(raft::Index from, raft::Index to, raft::Term term) {
  std::vector<raft::Entry> out;
  for (raft::Index i = from; i <= to; ++i) {
    out.push_back(MakeEntry(i, term, "e" + std::to_string(i) + "t" + std::to_string(term)));
  }
  return out;
}

}  // namespace skiff::storage::testing

namespace skiff::storage::testing {

// Test payloads "<records>:<max_ts>:<anything>" carry their own record info; other non-empty
// kNormal entries are one record without a timestamp.
inline std::string BatchPayload(uint32_t records, int64_t max_ts, const std::string& body) {
  return std::to_string(records) + ":" + std::to_string(max_ts) + ":" + body;
}

inline EntryRecordInfo TestClassifier(const raft::Entry& e) {
  if (e.type != raft::EntryType::kNormal || e.data.empty()) return {};
  const std::string s = e.data.ToString();
  const size_t a = s.find(':');
  const size_t b = a == std::string::npos ? a : s.find(':', a + 1);
  if (b == std::string::npos || a == 0) return EntryRecordInfo{1, -1};
  for (size_t i = 0; i < a; ++i) {
    if (s[i] < '0' || s[i] > '9') return EntryRecordInfo{1, -1};
  }
  return EntryRecordInfo{static_cast<uint32_t>(std::stoul(s.substr(0, a))),
                         std::stoll(s.substr(a + 1, b - a - 1))};
}

}  // namespace skiff::storage::testing
