// A RocksDB file system that, while armed, fails every sync of a written file with EIO: what a
// dying disk (or a thin-provisioned volume that ran out) reports to fdatasync. Writes still
// reach the page cache, so a failed write's bytes may or may not be on disk afterwards, as on
// Linux after a failed fsync. While stalled, every sync instead waits until the stall ends (a
// disk that hangs); a test must end the stall before it stops the brokers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/file_system.h>

namespace skiff::storage::testing {

class FailingSyncFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingSyncFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
      : rocksdb::FileSystemWrapper(std::move(base)) {}

  static const char* kClassName() { return "FailingSyncFileSystem"; }
  const char* Name() const override { return kClassName(); }

  void set_failing(bool failing) { failing_.store(failing); }
  void set_stalled(bool stalled) {
    std::lock_guard lock(stall_mu_);
    stalled_ = stalled;
    stall_cv_.notify_all();
  }
  int failed_syncs() const { return failed_syncs_.load(); }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->NewWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReopenWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReuseWritableFile(name, old_name, options, result, dbg), result);
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, FailingSyncFileSystem* fs)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      fs_->WaitWhileStalled();
      if (fs_->Fail()) return Eio();
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      fs_->WaitWhileStalled();
      if (fs_->Fail()) return Eio();
      return target()->Fsync(options, dbg);
    }
    rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                                rocksdb::IODebugContext* dbg) override {
      fs_->WaitWhileStalled();
      if (fs_->Fail()) return Eio();
      return target()->RangeSync(offset, nbytes, options, dbg);
    }

   private:
    static rocksdb::IOStatus Eio() {
      return rocksdb::IOStatus::IOError("injected EIO", "fdatasync: Input/output error");
    }
    FailingSyncFileSystem* fs_;
  };

  void WaitWhileStalled() {
    std::unique_lock lock(stall_mu_);
    stall_cv_.wait(lock, [&] { return !stalled_; });
  }

  bool Fail() {
    if (!failing_.load()) return false;
    failed_syncs_.fetch_add(1);
    return true;
  }

  rocksdb::IOStatus Wrap(rocksdb::IOStatus status,
                         std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (status.ok()) result->reset(new File(std::move(*result), this));
    return status;
  }

  std::atomic<bool> failing_{false};
  std::atomic<int> failed_syncs_{0};
  std::mutex stall_mu_;
  std::condition_variable stall_cv_;
  bool stalled_ = false;  // guarded by stall_mu_
};

}  // namespace skiff::storage::testing
