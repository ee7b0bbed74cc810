#include "libs/eventlog/embedded_log.h"

#include <atomic>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "crm/eventlog/v1/stored_record.pb.h"
#include "libs/common/grpc_status.h"
#include "libs/common/status_macros.h"
#include "libs/common/thread_name.h"
#include "libs/eventlog/answer_group.h"
#include "libs/eventlog/rocks_status.h"
#include "libs/eventlog/wal_check.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace crm::eventlog {
namespace {

// Key layout: 'm' topic           -> partition count (decimal)
//             'r' topic '\0' be32(partition) be64(offset) -> StoredRecord
//             's' topic '\0' stream -> be64(version): where each event stream stands, kept
//                                   by conditional appends (Writer::AppendExpecting)
std::string MetaKey(absl::string_view topic) { return absl::StrCat("m", topic); }

std::string StreamKey(absl::string_view topic, absl::string_view stream) {
  return absl::StrCat("s", topic, absl::string_view("\0", 1), stream);
}

std::string RecordPrefix(absl::string_view topic, int32_t partition) {
  std::string k = absl::StrCat("r", topic, absl::string_view("\0", 1));
  char buf[4];
  absl::big_endian::Store32(buf, static_cast<uint32_t>(partition));
  k.append(buf, 4);
  return k;
}

std::string RecordKey(absl::string_view topic, int32_t partition, int64_t offset) {
  std::string k = RecordPrefix(topic, partition);
  char buf[8];
  absl::big_endian::Store64(buf, static_cast<uint64_t>(offset));
  k.append(buf, 8);
  return k;
}


// An open writer's share of the log, under the log's mutex.
struct WriterState {
  // Appends taken whose callback has not returned yet.
  int64_t outstanding = 0;
  // Set once the writer closes: it takes no more appends.
  bool closing = false;
};

struct PendingAppend {
  WriterState* writer = nullptr;
  std::string topic;
  std::string key;
  std::vector<Message> messages;
  AppendCallback done;
  // The stream the append is conditional on, and the condition; Any: none.
  std::string stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  // Where the committer keeps `done` while it writes (EmbeddedLog::owed_).
  size_t slot = 0;
};

// The callback of an append the committer took from the queue, kept where a closing writer
// can still answer it while the write is underway.
struct Owed {
  WriterState* writer = nullptr;
  AppendCallback done;
};

// What the committer answers: the append's slot in owed_, and its outcome.
using Answers = std::vector<std::pair<size_t, absl::StatusOr<Appended>>>;

struct TopicState {
  int32_t partitions = 0;
  std::vector<int64_t> next;  // next offset per partition
};

class EmbeddedLog;

class EmbeddedWriter final : public Writer {
 public:
  EmbeddedWriter(EmbeddedLog* log, std::string topic, WriterState* state)
      : log_(log), topic_(std::move(topic)), state_(state) {}
  ~EmbeddedWriter() override;
  void Append(std::string key, std::vector<Message> messages, AppendCallback done) override;
  void AppendExpecting(std::string key, std::vector<Message> messages, std::string stream,
                       ExpectedVersion expected, AppendCallback done) override;
  const std::string& topic() const override { return topic_; }

 private:
  EmbeddedLog* log_;
  std::string topic_;
  WriterState* state_;  // owned by the log until ReleaseWriter
};

class EmbeddedSubscription;

class EmbeddedLog final : public Log {
 public:
  EmbeddedLog(EmbeddedLogOptions options, std::unique_ptr<rocksdb::DB> db)
      : options_(std::move(options)), db_(std::move(db)) {}

  ~EmbeddedLog() override {
    {
      absl::MutexLock l(&mu_);
      stopping_ = true;
    }
    // The committer writes what is queued, including appends the answers made, and stops once
    // no answer runs any more.
    if (committer_.joinable()) committer_.join();
    answerer_.reset();
    if (!read_only()) FlushBeforeClose(db_.get());
  }

  absl::Status Load() {
    std::map<std::string, TopicState> topics;
    CRM_RETURN_IF_ERROR(ScanTopics(topics));
    absl::MutexLock l(&mu_);
    topics_ = std::move(topics);
    if (options_.follower_dir.empty()) {
      answerer_ = std::make_unique<Answerer>("log-answer", [this](const std::vector<eventlog::Answer>& group) {
        absl::MutexLock l(&mu_);
        for (const eventlog::Answer& a : group) {
          if (a.done) --static_cast<WriterState*>(const_cast<void*>(a.owner))->outstanding;
        }
      });
      committer_ = std::thread([this] { CommitLoop(); });
    } else {
      committer_ = std::thread([this] { FollowLoop(); });
    }
    return absl::OkStatus();
  }

  bool read_only() const { return !options_.follower_dir.empty(); }

  // Every topic with its partitions and the next offset of each, as the database holds them.
  absl::Status ScanTopics(std::map<std::string, TopicState>& topics) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("m"); it->Valid() && it->key().starts_with("m"); it->Next()) {
      const std::string topic = it->key().ToString().substr(1);
      TopicState& t = topics[topic];
      t.partitions = std::stoi(it->value().ToString());
      t.next.assign(t.partitions, 0);
    }
    CRM_RETURN_IF_ERROR(FromRocks(it->status(), "scan topics"));
    for (auto& [topic, t] : topics) {
      for (int32_t p = 0; p < t.partitions; ++p) {
        // The last record of the partition is the greatest key below the next prefix.
        it->SeekForPrev(RecordKey(topic, p, INT64_MAX));
        // A damaged table file makes the seek fail, not find nothing: taken for an empty
        // partition, the log would hand out its offsets again and overwrite its records.
        CRM_RETURN_IF_ERROR(FromRocks(it->status(), absl::StrCat("find the end of ", topic, " partition ", p)));
        const std::string prefix = RecordPrefix(topic, p);
        if (it->Valid() && it->key().starts_with(prefix)) {
          t.next[p] = static_cast<int64_t>(
                          absl::big_endian::Load64(it->key().data() + prefix.size())) + 1;
        }
      }
    }
    return absl::OkStatus();
  }

  // A follower's loop: catch up with the owner's writes, then wake the subscribers when
  // something changed. An error is retried at the next turn.
  void FollowLoop() {
    NameThisThread("log-follow");
    for (;;) {
      {
        absl::MutexLock l(&mu_);
        auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
        if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.follow_interval)) return;
      }
      std::map<std::string, TopicState> topics;
      if (!db_->TryCatchUpWithPrimary().ok() || !ScanTopics(topics).ok()) continue;
      absl::MutexLock l(&mu_);
      bool changed = topics.size() != topics_.size();
      for (const auto& [name, t] : topics) {
        auto it = topics_.find(name);
        changed = changed || it == topics_.end() || it->second.next != t.next;
      }
      if (changed) {
        topics_ = std::move(topics);
        ++commit_seq_;
      }
    }
  }

  absl::Status CreateTopic(absl::string_view topic, int32_t partitions) override {
    if (topic.empty() || topic.find('\0') != absl::string_view::npos) {
      return absl::InvalidArgumentError("topic name is empty or has a NUL byte");
    }
    if (partitions < 1 || partitions > 1024) {
      return absl::InvalidArgumentError("partitions must be in [1, 1024]");
    }
    absl::MutexLock l(&mu_);
    auto it = topics_.find(std::string(topic));
    if (it == topics_.end() && read_only()) {
      return absl::FailedPreconditionError(absl::StrCat("no topic ", topic, ", and a read-only follower creates none"));
    }
    if (it != topics_.end()) {
      if (it->second.partitions == partitions) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat("topic ", topic, " exists with ",
                                                        it->second.partitions, " partitions"));
    }
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    CRM_RETURN_IF_ERROR(
        FromRocks(db_->Put(wo, MetaKey(topic), std::to_string(partitions)), "create topic"));
    TopicState& t = topics_[std::string(topic)];
    t.partitions = partitions;
    t.next.assign(partitions, 0);
    return absl::OkStatus();
  }

  absl::StatusOr<int32_t> PartitionCount(absl::string_view topic) override {
    absl::MutexLock l(&mu_);
    auto it = topics_.find(std::string(topic));
    if (it == topics_.end()) return absl::NotFoundError(absl::StrCat("no topic ", topic));
    return it->second.partitions;
  }

  absl::StatusOr<std::vector<int64_t>> EndOffsets(absl::string_view topic) override {
    absl::MutexLock l(&mu_);
    auto it = topics_.find(std::string(topic));
    if (it == topics_.end()) return absl::NotFoundError(absl::StrCat("no topic ", topic));
    return it->second.next;
  }

  absl::StatusOr<std::unique_ptr<Writer>> OpenWriter(absl::string_view topic) override {
    if (read_only()) return absl::FailedPreconditionError("a read-only follower of the log has no writers");
    absl::MutexLock l(&mu_);
    if (!topics_.contains(std::string(topic))) {
      return absl::NotFoundError(absl::StrCat("no topic ", topic));
    }
    auto [it, fresh] = writers_.try_emplace(std::string(topic));
    if (!fresh) {
      return absl::FailedPreconditionError(
          absl::StrCat("topic ", topic, " already has a writer"));
    }
    it->second = std::make_unique<WriterState>();
    return std::make_unique<EmbeddedWriter>(this, std::string(topic), it->second.get());
  }

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(absl::string_view topic,
                                                         std::vector<Position> from) override;

  // Closes the writer of `topic`: refuses its new appends, waits up to close_timeout for those
  // taken to be written and answered, answers the rest UNAVAILABLE itself, and returns once
  // no callback of the writer runs any more. Each callback runs exactly once.
  void ReleaseWriter(const std::string& topic, WriterState* w) {
    std::vector<AppendCallback> unanswered;
    auto drained = [w]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return w->outstanding == 0; };
    {
      absl::MutexLock l(&mu_);
      w->closing = true;
      if (!mu_.AwaitWithTimeout(absl::Condition(&drained), options_.close_timeout)) {
        std::deque<PendingAppend> others;
        for (PendingAppend& a : queue_) {
          if (a.writer == w) {
            unanswered.push_back(std::move(a.done));
          } else {
            others.push_back(std::move(a));
          }
        }
        queue_.swap(others);
        for (Owed& o : owed_) {
          if (o.writer == w && o.done) unanswered.push_back(std::exchange(o.done, nullptr));
        }
        // Written but not answered: the answerer is still busy with an earlier group.
        for (AppendCallback& done : answerer_->TakeWaiting(w)) unanswered.push_back(std::move(done));
        w->outstanding -= static_cast<int64_t>(unanswered.size());
      }
    }
    for (AppendCallback& done : unanswered) {
      done(ClientSafe(absl::UnavailableError(
          "the event log stopped before the write was confirmed; it may or may not have been written")));
    }
    absl::MutexLock l(&mu_);
    // Only callbacks the answerer runs at this moment are left: they must not block
    // (Writer::Append), so this wait is short.
    mu_.Await(absl::Condition(&drained));
    writers_.erase(topic);
  }

  // Queues `a` for the committer; refuses it, nothing written, when the writer closes
  // (UNAVAILABLE) or max_queued_appends wait already (RESOURCE_EXHAUSTED).
  void Enqueue(PendingAppend a) {
    if (a.messages.empty()) {
      a.done(absl::InvalidArgumentError("empty append"));
      return;
    }
    absl::Status refused;
    {
      absl::MutexLock l(&mu_);
      if (a.writer->closing) {
        refused = ClientSafe(absl::UnavailableError("the event log is stopping; nothing was written"));
      } else if (queue_.size() >= options_.max_queued_appends) {
        refused = ClientSafe(absl::ResourceExhaustedError(
            "the event log has too many writes queued; nothing was written; retry later"));
      } else {
        ++a.writer->outstanding;
        queue_.push_back(std::move(a));
        return;
      }
    }
    a.done(std::move(refused));
  }

  // Wake-up support for subscriptions: a counter bumped after every commit.
  uint64_t WaitForCommitAfter(uint64_t seen, absl::Duration timeout, const bool* woken) {
    absl::MutexLock l(&mu_);
    auto cond = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return commit_seq_ != seen || *woken || stopping_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&cond), timeout);
    return commit_seq_;
  }

  uint64_t commit_seq() {
    absl::MutexLock l(&mu_);
    return commit_seq_;
  }

  // Lets Wake() interrupt a waiting subscriber: the flag lives under mu_.
  void SetFlag(bool* flag) {
    absl::MutexLock l(&mu_);
    *flag = true;
  }
  bool TakeFlag(bool* flag) {
    absl::MutexLock l(&mu_);
    bool v = *flag;
    *flag = false;
    return v;
  }

  rocksdb::DB* db() { return db_.get(); }

 private:
  void CommitLoop() {
    NameThisThread("log-commit");
    for (;;) {
      std::deque<PendingAppend> group;
      std::vector<std::pair<int32_t, int64_t>> placed;  // partition, first offset
      rocksdb::WriteBatch batch;
      std::map<std::string, int64_t> stream_at;  // versions this group moves, by StreamKey
      Answers answers;
      const int64_t now_ms = absl::ToUnixMillis(absl::Now());
      std::deque<PendingAppend> taken;
      // The taken appends' topics as they stand, moved on by this group's appends.
      std::map<std::string, TopicState> state;
      // One group ahead of the answers at most (Answerer).
      answerer_->WaitTaken();
      if (StoppedOnceAnswered()) return;
      {
        absl::MutexLock l(&mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) continue;  // stopping: StoppedOnceAnswered() decides
        size_t bytes = 0;
        while (!queue_.empty() && (taken.empty() || bytes < options_.max_group_bytes)) {
          PendingAppend a = std::move(queue_.front());
          queue_.pop_front();
          a.slot = owed_.size();
          owed_.push_back({a.writer, std::move(a.done)});
          auto t = topics_.find(a.topic);
          if (t == topics_.end()) {
            answers.emplace_back(a.slot, absl::NotFoundError("topic vanished"));
            continue;
          }
          state.try_emplace(a.topic, t->second);
          for (const Message& m : a.messages) bytes += m.value.size();
          taken.push_back(std::move(a));
        }
      }
      // After a failed write, RocksDB is resumed before anything else, and the offsets are read
      // back: whether that write landed was unknown, and if it did its offsets are taken.
      if (needs_resume_) {
        absl::Status r = ResumeIfNeeded(*db_, &needs_resume_, "append");
        std::map<std::string, TopicState> scanned;
        if (r.ok()) r = ScanTopics(scanned);
        if (!r.ok()) {
          for (PendingAppend& a : taken) answers.emplace_back(a.slot, r);  // refused before writing: nothing written
          Answer(answers);
          continue;
        }
        absl::MutexLock l(&mu_);
        for (auto& [topic, t] : scanned) {
          auto it = topics_.find(topic);
          if (it != topics_.end() && it->second.partitions == t.partitions) it->second.next = t.next;
          if (auto st = state.find(topic); st != state.end() && st->second.partitions == t.partitions) {
            st->second.next = t.next;
          }
        }
      }
      // Checks and encoding run outside the lock: appenders and subscribers keep going. Only
      // this thread moves a topic's offsets, so the snapshot stays right until the commit.
      for (PendingAppend& a : taken) {
        if (a.expected.kind() != ExpectedVersion::Kind::kAny) {
          absl::Status s = CheckStream(a, stream_at, batch);
          if (!s.ok()) {
            answers.emplace_back(a.slot, std::move(s));
            continue;
          }
        }
        TopicState& t = state.at(a.topic);
        const int32_t p = PartitionForKey(a.key, t.partitions);
        placed.emplace_back(p, t.next[p]);
        for (const Message& m : a.messages) {
          crm::eventlog::v1::StoredRecord rec;
          rec.set_key(a.key);
          rec.set_value(m.value);
          rec.set_timestamp_ms(now_ms);
          for (const Header& h : m.headers) {
            auto* hh = rec.add_headers();
            hh->set_key(h.key);
            hh->set_value(h.value);
          }
          batch.Put(RecordKey(a.topic, p, t.next[p]++), rec.SerializeAsString());
        }
        group.push_back(std::move(a));
      }
      if (group.empty()) {
        Answer(answers);
        continue;
      }
      rocksdb::WriteOptions wo;
      wo.sync = options_.sync;
      const absl::Status s = WriteResuming(*db_, wo, &batch, &needs_resume_, "append");
      for (size_t i = 0; i < group.size(); ++i) {
        if (!s.ok()) {
          answers.emplace_back(group[i].slot, s);
          continue;
        }
        Appended out;
        out.partition = placed[i].first;
        out.timestamp_ms = now_ms;
        for (size_t j = 0; j < group[i].messages.size(); ++j) {
          out.offsets.push_back(placed[i].second + static_cast<int64_t>(j));
        }
        answers.emplace_back(group[i].slot, std::move(out));
      }
      Answer(answers, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        if (!s.ok()) return;
        for (auto& [topic, t] : state) topics_[topic].next = std::move(t.next);
        ++commit_seq_;
      });
    }
  }

  // Whether the committer may stop: the log is stopping, nothing is queued, and no answer
  // runs that could append again.
  bool StoppedOnceAnswered() {
    {
      absl::MutexLock l(&mu_);
      if (!stopping_ || !queue_.empty()) return false;
    }
    answerer_->WaitIdle();
    absl::MutexLock l(&mu_);
    return queue_.empty();
  }

  // Hands this group's `answers` to the answerer, which runs their callbacks in order while
  // this thread writes the next group, except those a closing writer answered already
  // (ReleaseWriter), and then counts them done for their writers. `committed` runs under the
  // lock first, so a reader woken by a callback sees the offsets the commit moved. Every slot
  // of owed_ must be in `answers`.
  void Answer(Answers& answers, absl::FunctionRef<void()> committed = [] {}) {
    std::vector<eventlog::Answer> group;
    group.reserve(answers.size());
    absl::MutexLock l(&mu_);
    committed();
    for (auto& [slot, result] : answers) {
      Owed& o = owed_[slot];
      group.push_back({std::exchange(o.done, nullptr), std::move(result), o.writer});
    }
    owed_.clear();
    // Under the lock: a closing writer finds each callback in owed_ or in the answerer.
    answerer_->Hand(std::move(group));
  }

  // Whether `a` may append to its stream: the version it expects (NoStream: 0) is where the
  // stream stands (after the appends earlier in this group). If so, the stream's new version
  // joins `batch`. A stream with no version kept yet (appended to only without a condition, by
  // tools or by a binary from before versions were kept) takes the first conditional append as
  // it comes: logs written before versions were kept still take writes.
  absl::Status CheckStream(const PendingAppend& a, std::map<std::string, int64_t>& stream_at,
                           rocksdb::WriteBatch& batch) {
    const std::string& stream = a.stream;
    const int64_t expected = a.expected.version();  // 0 for NoStream
    const std::string key = StreamKey(a.topic, stream);
    auto it = stream_at.find(key);
    std::optional<int64_t> at;
    if (it != stream_at.end()) {
      at = it->second;
    } else {
      std::string v;
      rocksdb::Status st = db_->Get(rocksdb::ReadOptions(), key, &v);
      if (st.ok() && v.size() == 8) {
        at = static_cast<int64_t>(absl::big_endian::Load64(v.data()));
      } else if (!st.IsNotFound()) {
        return st.ok() ? absl::DataLossError(absl::StrCat("stream ", stream, ": malformed version row"))
                       : FromRocks(st, "read a stream's version");
      }
    }
    if (at.has_value() && *at > expected) {
      return absl::AbortedError(absl::StrCat("stream ", stream, " is at version ", *at, ", not ",
                                             expected == 0 ? "without events" : absl::StrCat(expected),
                                             ": the append was decided on stale state; nothing was written"));
    }
    if (at.has_value() && *at < expected) {
      return absl::DataLossError(absl::StrCat("stream ", stream, " is at version ", *at, ": an append from version ",
                                              expected, " would leave a gap; nothing was written"));
    }
    const int64_t next = expected + static_cast<int64_t>(a.messages.size());
    stream_at[key] = next;
    char buf[8];
    absl::big_endian::Store64(buf, static_cast<uint64_t>(next));
    batch.Put(key, rocksdb::Slice(buf, 8));
    return absl::OkStatus();
  }

  const EmbeddedLogOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  absl::Mutex mu_;
  std::map<std::string, TopicState> topics_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<WriterState>> writers_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingAppend> queue_ ABSL_GUARDED_BY(mu_);
  // The callbacks of the appends the committer is writing, by PendingAppend::slot.
  std::vector<Owed> owed_ ABSL_GUARDED_BY(mu_);
  uint64_t commit_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool needs_resume_ = false;  // the committer thread's own
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Runs the written groups' callbacks (the owner's; null for a follower).
  std::unique_ptr<Answerer> answerer_;
  std::thread committer_;
};

EmbeddedWriter::~EmbeddedWriter() { log_->ReleaseWriter(topic_, state_); }

void EmbeddedWriter::Append(std::string key, std::vector<Message> messages,
                            AppendCallback done) {
  log_->Enqueue({state_, topic_, std::move(key), std::move(messages), std::move(done)});
}

void EmbeddedWriter::AppendExpecting(std::string key, std::vector<Message> messages, std::string stream,
                                     ExpectedVersion expected, AppendCallback done) {
  if (absl::Status s = ValidateExpectation(stream, expected); !s.ok()) return done(std::move(s));
  log_->Enqueue({state_, topic_, std::move(key), std::move(messages), std::move(done), std::move(stream), expected});
}

class EmbeddedSubscription final : public Subscription {
 public:
  EmbeddedSubscription(EmbeddedLog* log, std::string topic, std::vector<::crm::eventlog::Position> from)
      : log_(log), topic_(std::move(topic)) {
    for (const auto& p : from) next_[p.partition] = p.offset;
  }

  absl::StatusOr<std::vector<Record>> Poll(size_t max_records, absl::Duration timeout) override {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      const uint64_t seq = log_->commit_seq();
      std::vector<Record> out;
      CRM_RETURN_IF_ERROR(ReadAvailable(max_records, out));
      if (!out.empty() || log_->TakeFlag(&woken_)) return out;
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return out;
      log_->WaitForCommitAfter(seq, left, &woken_);
    }
  }

  void Wake() override { log_->SetFlag(&woken_); }

  int64_t Position(int32_t partition) const override {
    auto it = next_.find(partition);
    return it == next_.end() ? 0 : it->second;
  }

 private:
  absl::Status ReadAvailable(size_t max_records, std::vector<Record>& out) {
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(log_->db()->NewIterator(ro));
    // Fair share per partition so one busy partition does not starve the others.
    const size_t share = std::max<size_t>(1, max_records / std::max<size_t>(1, next_.size()));
    for (auto& [partition, offset] : next_) {
      const std::string prefix = RecordPrefix(topic_, partition);
      size_t taken = 0;
      for (it->Seek(RecordKey(topic_, partition, offset));
           it->Valid() && it->key().starts_with(prefix) && taken < share &&
           out.size() < max_records;
           it->Next(), ++taken) {
        crm::eventlog::v1::StoredRecord rec;
        if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
          return absl::DataLossError("undecodable record in embedded log");
        }
        Record r;
        r.topic = topic_;
        r.partition = partition;
        r.offset = static_cast<int64_t>(absl::big_endian::Load64(it->key().data() + prefix.size()));
        r.timestamp_ms = rec.timestamp_ms();
        r.key = rec.key();
        r.value = std::move(*rec.mutable_value());
        for (const auto& h : rec.headers()) r.headers.push_back({h.key(), h.value()});
        offset = r.offset + 1;
        out.push_back(std::move(r));
      }
      CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read"));
    }
    return absl::OkStatus();
  }

  EmbeddedLog* log_;
  std::string topic_;
  std::map<int32_t, int64_t> next_;
  bool woken_ = false;  // guarded by the log's mutex
};

absl::StatusOr<std::unique_ptr<Subscription>> EmbeddedLog::Subscribe(absl::string_view topic,
                                                                     std::vector<Position> from) {
  CRM_ASSIGN_OR_RETURN(int32_t n, PartitionCount(topic));
  for (const Position& p : from) {
    if (p.partition < 0 || p.partition >= n) {
      return absl::InvalidArgumentError(absl::StrCat("partition ", p.partition, " out of range"));
    }
    if (p.offset < 0) return absl::InvalidArgumentError("negative offset");
  }
  return std::make_unique<EmbeddedSubscription>(this, std::string(topic), std::move(from));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Log>> OpenEmbeddedLog(const EmbeddedLogOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("embedded log path is empty");
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.compression = rocksdb::kLZ4Compression;
  ro.IncreaseParallelism(2);
  // RocksDB's default (point-in-time recovery) stops replaying the WAL at its first damaged
  // record and opens without the writes after it: acknowledged events vanished with one WARN
  // line. This mode refuses a damaged record anywhere and tolerates only an incomplete last
  // record, which a crash tears before it was synced and acknowledged. (kAbsoluteConsistency
  // refuses that too, so every kill -9 would need an operator.) Measured on RocksDB 7.8, 30
  // synced writes, docs/durability.md: a flipped byte in any record's payload is refused; a
  // flipped length byte in the last record looks like a torn write and is dropped, which the
  // projections' checkpoints and the seals catch (OpenProjections, Sealer).
  ro.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // That mode also takes a damaged length field in the WAL's last block for a torn write, and
  // drops every record after it. The owner reads its WAL files first (after a clean stop they
  // are empty; after a crash at most a few memtables' worth) and refuses what RocksDB would
  // not see; they also name the file and offset, which RocksDB's refusal does not.
  std::vector<WalDamage> damage;
  if (options.follower_dir.empty() && std::filesystem::exists(options.path)) {
    CRM_ASSIGN_OR_RETURN(damage, CheckWalFiles(options.path));
  }
  auto refuse = [&options](const std::string& where) {
    return absl::DataLossError(absl::StrCat(
        "the embedded log at ", options.path, " refuses to open: ", where,
        ". Restore the data folder from a backup, or accept losing those writes (crmd --accept-log-truncation)"));
  };
  if (!damage.empty() && !options.accept_truncation) return refuse(DescribeWalDamage(damage.front()));
  if (!damage.empty()) ro.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  absl::StatusOr<std::unique_ptr<rocksdb::DB>> db =
      OpenRocks(ro, options.path, options.follower_dir, "embedded log");
  if (absl::IsDataLoss(db.status()) && damage.empty()) {
    // A follower's refusal, or damage only RocksDB sees: named by the scan when it is the WAL.
    absl::StatusOr<std::vector<WalDamage>> found = CheckWalFiles(options.path);
    if (found.ok() && !found->empty()) {
      if (!options.accept_truncation || !options.follower_dir.empty()) {
        return refuse(DescribeWalDamage(found->front()));
      }
      damage = *std::move(found);
      ro.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
      db = OpenRocks(ro, options.path, options.follower_dir, "embedded log");
    }
  }
  if (db.ok() && !damage.empty()) {
    // Into table files at once: the damaged WAL is then obsolete and removed, so the next
    // start is an ordinary one and nothing replays past the damage again.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    CRM_RETURN_IF_ERROR(FromRocks((*db)->Flush(fo), "flush the embedded log after a truncation"));
    if (options.on_truncation) {
      options.on_truncation(absl::StrCat("accepted a truncation of the embedded log at ", options.path, ": ",
                                         DescribeWalDamage(damage.front()), "; those writes are dropped"));
    }
  }
  if (!db.ok()) return db.status();
  auto log = std::make_unique<EmbeddedLog>(options, *std::move(db));
  CRM_RETURN_IF_ERROR(log->Load());
  return log;
}

}  // namespace crm::eventlog
