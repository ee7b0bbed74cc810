#include "libs/eventlog/rocks_status.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "rocksdb/listener.h"

namespace crm::eventlog {

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string msg = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": the disk holding the data is full (", s.ToString(), "); writes resume once there is space"));
  }
  if (s.IsIOError()) return absl::UnavailableError(msg);
  if (s.IsCorruption()) return absl::DataLossError(msg);
  return absl::InternalError(msg);
}

namespace {

std::atomic<void (*)(absl::string_view)> rocks_log_sink{nullptr};

class SinkLogger final : public rocksdb::Logger {
 public:
  explicit SinkLogger(std::string what) : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), what_(std::move(what)) {}
  using rocksdb::Logger::Logv;
  // Only reached for lines at WARN_LEVEL and above.
  void Logv(const char* format, va_list ap) override {
    char buf[2048];
    std::vsnprintf(buf, sizeof buf, format, ap);
    const std::string line = absl::StrCat("rocksdb (", what_, "): ", buf);
    if (auto* sink = rocks_log_sink.load()) {
      sink(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }

 private:
  const std::string what_;
};

// Turns RocksDB's own recovery from a full disk off, so that ResumeRocks() is the only one:
// its polling recovery (the SstFileManager's) was seen stuck "in progress" after space
// returned, one time in five, refusing every manual Resume() as Busy.
class ManualRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

}  // namespace

void SetRocksLogSink(void (*sink)(absl::string_view line)) { rocks_log_sink.store(sink); }

absl::Status ResumeIfNeeded(rocksdb::DB& db, bool* needs_resume, absl::string_view what) {
  if (!*needs_resume) return absl::OkStatus();
  const rocksdb::Status r = db.Resume();
  // Busy: a recovery is in progress. Nothing may be written meanwhile: RocksDB asserts on a
  // write to a file after that file's failure.
  if (r.IsBusy()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": recovering from a full disk; writes resume once there is space"));
  }
  if (!r.ok()) return FromRocks(r, absl::StrCat(what, " (resuming after a failed write)"));
  *needs_resume = false;
  return absl::OkStatus();
}

absl::Status WriteResuming(rocksdb::DB& db, const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                           bool* needs_resume, absl::string_view what) {
  if (absl::Status r = ResumeIfNeeded(db, needs_resume, what); !r.ok()) return r;
  absl::Status s = FromRocks(db.Write(options, batch), what);
  *needs_resume = !s.ok();
  if (s.ok()) return s;
  return absl::UnavailableError(absl::StrCat(s.message(), "; whether the write landed is unknown"));
}

void FlushBeforeClose(rocksdb::DB* db) {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  db->Flush(fo).PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<rocksdb::DB>> OpenRocks(rocksdb::Options options, const std::string& path,
                                                       const std::string& follower_dir, absl::string_view what) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (options.info_log == nullptr) options.info_log = std::make_shared<SinkLogger>(std::string(what));
  options.listeners.push_back(std::make_shared<ManualRecovery>());
  if (follower_dir.empty()) {
    // After a crash, RocksDB replays the WAL into memtables and by default flushes them to
    // new table files before Open returns. Kept in memory instead, the replayed writes stay
    // covered by the retained WAL until the next regular flush, so nothing acknowledged is at
    // risk. (With FlushBeforeClose and the two settings below, serving after kill -9 at 10M
    // events took 1.5-1.7 s against 2.6-2.8 s before; this setting was not timed alone.)
    options.avoid_flush_during_recovery = true;
    // Open table files on first use, not all at Open, and skip the table statistics Open
    // would read from them: with 10M customers that took about 0.8 s off a restart.
    options.max_open_files = 1024;
    options.skip_stats_update_on_db_open = true;
    // Made here, else RocksDB logs an error for the folder it is about to create.
    std::error_code ec;
    if (options.create_if_missing) std::filesystem::create_directories(path, ec);
    s = rocksdb::DB::Open(options, path, &raw);
  } else {
    options.create_if_missing = false;
    options.max_open_files = -1;  // a secondary instance keeps every file open
    s = rocksdb::DB::OpenAsSecondary(options, path, follower_dir, &raw);
  }
  if (absl::Status st = FromRocks(s, absl::StrCat(follower_dir.empty() ? "open " : "follow ", what, " at ", path));
      !st.ok()) {
    return st;
  }
  return std::unique_ptr<rocksdb::DB>(raw);
}

}  // namespace crm::eventlog
