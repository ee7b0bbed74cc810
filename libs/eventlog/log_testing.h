#ifndef CRM_LIBS_EVENTLOG_LOG_TESTING_H_
#define CRM_LIBS_EVENTLOG_LOG_TESTING_H_

// What tests of the service engines share (tests only): the events one aggregate has in the
// log, read from the log itself rather than from a projection, so a test of a command sees
// what it wrote even where no read model lists it; and a log that refuses a chosen append, so
// a test can stop a command between two of its writes as a crash would.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/log.h"

namespace crm::eventlog::testing {

// The event types of `aggregate_id` in `topic`, in log order (one aggregate lives in one
// partition). An error when the topic cannot be read or a record does not decode.
inline absl::StatusOr<std::vector<std::string>> EventTypesOf(Log& log, absl::string_view topic,
                                                             absl::string_view aggregate_id) {
  auto partitions = log.PartitionCount(topic);
  if (!partitions.ok()) return partitions.status();
  std::vector<Position> from;
  for (int32_t p = 0; p < *partitions; ++p) from.push_back({p, 0});
  auto records = ReadToEnd(log, topic, from);
  if (!records.ok()) return records.status();
  std::vector<std::string> out;
  for (const auto& r : *records) {
    auto env = DecodeEnvelope(r.value);
    if (!env.ok()) return env.status();
    if (env->aggregate_id() == aggregate_id) out.push_back(env->event_type());
  }
  return out;
}

// Which appends a FaultyLog refuses: called with the topic, the key and the messages of each.
using AppendPredicate =
    std::function<bool(absl::string_view topic, absl::string_view key, const std::vector<Message>& messages)>;

// Matches an append holding an event of `event_type` (the envelope's full name, e.g.
// "crm.customers.v1.CustomerMergedInto"); a message that is no envelope matches nothing.
inline AppendPredicate EventTypeIs(std::string event_type) {
  return [event_type = std::move(event_type)](absl::string_view, absl::string_view, const std::vector<Message>& ms) {
    for (const auto& m : ms) {
      auto env = DecodeEnvelope(m.value);
      if (env.ok() && env->event_type() == event_type) return true;
    }
    return false;
  };
}

// A Log that passes everything to `base` except that it refuses the `nth` (1-based) append
// matching `refuse`, counted over every writer it opened: that append writes nothing and
// answers UNAVAILABLE, as when the process dies before the write reaches the disk. Later
// appends, matching or not, go through. So a test can stop a command that writes twice between
// its two writes, then open a new engine on `base` to see what a restart finds.
// `base` must outlive the FaultyLog and its writers. Thread-safe as `base` is. The refusal
// reaches `done` on a thread of its own, as an answer of the log would (never inside Append).
class FaultyLog final : public Log {
 public:
  FaultyLog(Log& base, AppendPredicate refuse, int64_t nth = 1)
      : state_(std::make_shared<State>(std::move(refuse), nth)), base_(base) {}

  // How many appends were refused so far (0 or 1).
  int64_t refused() const {
    absl::MutexLock l(&state_->mu);
    return state_->refused;
  }

  absl::Status CreateTopic(absl::string_view topic, int32_t partitions) override {
    return base_.CreateTopic(topic, partitions);
  }
  absl::StatusOr<int32_t> PartitionCount(absl::string_view topic) override { return base_.PartitionCount(topic); }
  absl::StatusOr<std::vector<int64_t>> EndOffsets(absl::string_view topic) override {
    return base_.EndOffsets(topic);
  }
  absl::StatusOr<std::unique_ptr<Writer>> OpenWriter(absl::string_view topic) override {
    auto w = base_.OpenWriter(topic);
    if (!w.ok()) return w.status();
    return std::unique_ptr<Writer>(new FaultyWriter(*std::move(w), state_));
  }
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(absl::string_view topic,
                                                         std::vector<Position> from) override {
    return base_.Subscribe(topic, std::move(from));
  }

 private:
  struct State {
    State(AppendPredicate r, int64_t n) : refuse(std::move(r)), nth(n) {}
    const AppendPredicate refuse;
    const int64_t nth;
    mutable absl::Mutex mu;
    int64_t matched ABSL_GUARDED_BY(mu) = 0;
    int64_t refused ABSL_GUARDED_BY(mu) = 0;
  };

  class FaultyWriter final : public Writer {
   public:
    FaultyWriter(std::unique_ptr<Writer> base, std::shared_ptr<State> state)
        : base_(std::move(base)), state_(std::move(state)) {}
    ~FaultyWriter() override {
      for (auto& t : answers_) t.join();
    }
    void Append(std::string key, std::vector<Message> messages, AppendCallback done) override {
      if (Refuses(key, messages)) return Refuse(std::move(done));
      base_->Append(std::move(key), std::move(messages), std::move(done));
    }
    void AppendExpecting(std::string key, std::vector<Message> messages, std::string stream,
                         ExpectedVersion expected, AppendCallback done) override {
      if (Refuses(key, messages)) return Refuse(std::move(done));
      base_->AppendExpecting(std::move(key), std::move(messages), std::move(stream), expected, std::move(done));
    }
    const std::string& topic() const override { return base_->topic(); }
    int64_t recoveries() const override { return base_->recoveries(); }

   private:
    bool Refuses(absl::string_view key, const std::vector<Message>& messages) {
      if (!state_->refuse(base_->topic(), key, messages)) return false;
      absl::MutexLock l(&state_->mu);
      if (++state_->matched != state_->nth) return false;
      ++state_->refused;
      return true;
    }
    void Refuse(AppendCallback done) {
      absl::MutexLock l(&mu_);
      answers_.emplace_back([done = std::move(done), topic = base_->topic()]() mutable {
        done(absl::UnavailableError(absl::StrCat("append to ", topic, " refused by FaultyLog")));
      });
    }

    std::unique_ptr<Writer> base_;
    std::shared_ptr<State> state_;
    absl::Mutex mu_;
    std::vector<std::thread> answers_ ABSL_GUARDED_BY(mu_);
  };

  std::shared_ptr<State> state_;
  Log& base_;
};

}  // namespace crm::eventlog::testing

#endif  // CRM_LIBS_EVENTLOG_LOG_TESTING_H_
