#include "services/integration/public_relay.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "services/integration/ledger.h"
#include "services/integration/public_event.h"

namespace crm::integration {
namespace {

// Store rows: "n/<topic>/<partition>" the next source offset to publish, "e/<partition>" an
// end offset of the public topic up to which every record's source is stored.
std::string NextKey(const std::string& topic, int32_t partition) { return absl::StrCat("n/", topic, "/", partition); }
std::string EndKey(int32_t partition) { return absl::StrCat("e/", partition); }

}  // namespace

absl::StatusOr<std::unique_ptr<PublicEventsRelay>> PublicEventsRelay::Start(eventlog::Log* log, Options options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("relay: dir is required");
  if (options.public_topic.empty()) options.public_topic = kPublicTopic;
  std::unique_ptr<PublicEventsRelay> r(new PublicEventsRelay(log, std::move(options)));
  absl::StatusOr<std::unique_ptr<rocksdb::DB>> db = OpenStore(r->options_.dir);
  if (!db.ok()) return db.status();
  r->db_ = *std::move(db);
  {
    absl::MutexLock l(&r->mu_);
    for (const auto& [k, v] : LoadNumbers(*r->db_)) {
      const size_t slash = k.rfind('/');
      int32_t p = 0;
      if (slash == std::string::npos || !absl::SimpleAtoi(k.substr(slash + 1), &p)) continue;
      if (k.starts_with("e/")) r->public_ends_[p] = v;
      if (k.starts_with("n/") && slash > 2) r->next_[{k.substr(2, slash - 2), p}] = v;
    }
  }
  if (auto s = log->CreateTopic(r->options_.public_topic, r->options_.partitions); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<eventlog::Writer>> w = log->OpenWriter(r->options_.public_topic);
  if (!w.ok()) return w.status();
  r->writer_ = *std::move(w);
  if (auto s = r->Recover(); !s.ok()) return s;
  r->thread_ = std::thread([p = r.get()] { p->Run(); });
  return r;
}

PublicEventsRelay::~PublicEventsRelay() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status PublicEventsRelay::Recover() {
  std::map<int32_t, int64_t> ends;
  {
    absl::MutexLock l(&mu_);
    ends = public_ends_;
  }
  absl::StatusOr<ReadBack> back = ReadBackWritten(*log_, options_.public_topic, options_.partitions, std::move(ends));
  if (!back.ok()) return back.status();
  {
    absl::MutexLock l(&mu_);
    for (const SourcePosition& pos : back->originals) {
      int64_t& next = next_[{pos.topic, pos.partition}];
      next = std::max(next, pos.offset + 1);
    }
    public_ends_ = back->ends;
  }
  return Store(back->ends);
}

absl::Status PublicEventsRelay::Store(const std::map<int32_t, int64_t>& public_ends) {
  std::map<std::string, int64_t> rows;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [tp, next] : next_) rows[NextKey(tp.first, tp.second)] = next;
  }
  for (const auto& [p, end] : public_ends) rows[EndKey(p)] = end;
  return StoreRows(*db_, rows);
}

void PublicEventsRelay::Run() {
  while (true) {
    absl::Status s = Relay();
    absl::MutexLock l(&mu_);
    if (stop_) return;
    status_ = s;
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopped), options_.retry_after)) return;
    mu_.Unlock();
    // What the failed batch left on the public topic is learnt again before going on.
    absl::Status r = Recover();
    mu_.Lock();
    if (!r.ok()) status_ = r;
  }
}

absl::Status PublicEventsRelay::Relay() {
  std::map<std::string, std::unique_ptr<eventlog::Subscription>> subs;
  absl::Time next_topic_check = absl::InfinitePast();
  bool busy = false;
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (stop_) return absl::OkStatus();
    }
    if (subs.size() < options_.topics.size() && absl::Now() >= next_topic_check) {
      // A topic that does not exist yet is looked for again every retry_after.
      next_topic_check = absl::Now() + options_.retry_after;
      for (const std::string& topic : options_.topics) {
        if (subs.contains(topic)) continue;
        absl::StatusOr<int32_t> n = log_->PartitionCount(topic);
        if (absl::IsNotFound(n.status())) continue;
        if (!n.ok()) return n.status();
        std::vector<eventlog::Position> from;
        {
          absl::MutexLock l(&mu_);
          for (int32_t p = 0; p < *n; ++p) {
            auto it = next_.find({topic, p});
            from.push_back({p, it == next_.end() ? 0 : it->second});
          }
        }
        absl::StatusOr<std::unique_ptr<eventlog::Subscription>> sub = log_->Subscribe(topic, from);
        if (!sub.ok()) return sub.status();
        subs[topic] = *std::move(sub);
      }
      absl::MutexLock l(&mu_);
      if (subs.size() == options_.topics.size() && status_.ok() == false) status_ = absl::OkStatus();
    }
    const bool was_busy = busy;
    busy = false;
    for (auto& [topic, sub] : subs) {
      absl::StatusOr<std::vector<eventlog::Record>> recs =
          sub->Poll(options_.batch_records, was_busy ? absl::ZeroDuration() : absl::Milliseconds(50));
      if (!recs.ok()) return recs.status();
      if (recs->empty()) continue;
      busy = true;
      if (auto s = Publish(*recs); !s.ok()) return s;
    }
    if (subs.empty()) {
      absl::MutexLock l(&mu_);
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopped), options_.retry_after);
    }
  }
}

absl::Status PublicEventsRelay::Publish(const std::vector<eventlog::Record>& records) {
  std::vector<eventlog::Message> messages;
  messages.reserve(records.size());
  for (const eventlog::Record& r : records) {
    // A record that is no event halts the relay at it: skipping would lose it for consumers.
    absl::StatusOr<eventlog::Message> m = PublicEventMessage(r);
    if (!m.ok()) return m.status();
    messages.push_back(*std::move(m));
  }
  absl::BlockingCounter pending(static_cast<int>(records.size()));
  absl::Mutex done_mu;
  absl::Status failed;
  std::map<int32_t, int64_t> ends;
  for (size_t i = 0; i < records.size(); ++i) {
    writer_->Append(records[i].key, {std::move(messages[i])}, [&](absl::StatusOr<eventlog::Appended> a) {
      {
        absl::MutexLock l(&done_mu);
        if (!a.ok()) {
          if (failed.ok()) failed = a.status();
        } else {
          int64_t& end = ends[a->partition];
          end = std::max(end, a->offsets.back() + 1);
        }
      }
      pending.DecrementCount();
    });
  }
  pending.Wait();
  if (!failed.ok()) return failed;
  {
    absl::MutexLock l(&mu_);
    for (const eventlog::Record& r : records) {
      int64_t& next = next_[{r.topic, r.partition}];
      next = std::max(next, r.offset + 1);
    }
    for (const auto& [p, end] : ends) public_ends_[p] = std::max(public_ends_[p], end);
    ends = public_ends_;
    published_ += static_cast<int64_t>(records.size());
  }
  return Store(ends);
}

int64_t PublicEventsRelay::published() const {
  absl::MutexLock l(&mu_);
  return published_;
}

absl::Status PublicEventsRelay::status() const {
  absl::MutexLock l(&mu_);
  return status_;
}

std::map<std::pair<std::string, int32_t>, int64_t> PublicEventsRelay::positions() const {
  absl::MutexLock l(&mu_);
  return next_;
}

absl::Status PublicEventsRelay::WaitCaughtUp(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (const std::string& topic : options_.topics) {
    absl::StatusOr<int32_t> n = log_->PartitionCount(topic);
    if (absl::IsNotFound(n.status())) continue;
    if (!n.ok()) return n.status();
    for (int32_t p = 0; p < *n; ++p) {
      auto next = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        auto it = next_.find({topic, p});
        return it == next_.end() ? int64_t{0} : it->second;
      };
      if (auto s = WaitPastLastRecord(*log_, topic, p, mu_, next, deadline); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("relay: ", s.message()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace crm::integration
