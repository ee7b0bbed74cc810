#ifndef CRM_TOOLS_BENCH_CHAIN_WRITER_H_
#define CRM_TOOLS_BENCH_CHAIN_WRITER_H_

// Seeds an event log for crm-bench's rebuild and report workloads without the services: each
// aggregate's events sealed as versions 1..n in one hash chain, as the services write them.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/common/ids.h"
#include "libs/common/proto_time.h"
#include "libs/eventlog/envelope.h"
#include "libs/eventlog/log.h"

namespace crm::bench {

class ChainWriter {
 public:
  // One event and when it happened (occurred_at and recorded_at alike).
  struct Event {
    const google::protobuf::Message* payload;
    absl::Time at;
  };

  ChainWriter(eventlog::Writer* w, std::string source) : w_(w), source_(std::move(source)) {}

  // Appends one aggregate's events by `actor` (a rep of `team`); at most 4000 appends in flight.
  void Aggregate(const std::string& type, const std::string& id, const std::vector<Event>& events,
                 const std::string& actor = "rep1", const std::string& team = "") {
    common::v1::EventEnvelope env;
    env.set_aggregate_type(type);
    env.set_aggregate_id(id);
    env.mutable_actor()->set_user_id(actor);
    env.mutable_actor()->set_role("rep");
    env.mutable_actor()->set_team_id(team);
    std::vector<eventlog::Message> batch;
    eventlog::StreamSealer sealer(0, "", source_);
    for (const Event& e : events) {
      *env.mutable_occurred_at() = ToProto(e.at);
      *env.mutable_recorded_at() = ToProto(e.at);
      env.set_event_id(NewUuidV7(e.at));
      env.set_event_type(e.payload->GetDescriptor()->full_name());
      env.mutable_payload()->PackFrom(*e.payload);
      batch.push_back(sealer.Seal(env));
    }
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(+[](int64_t* n) { return *n < 4000; }, &inflight_));
      ++inflight_;
    }
    w_->Append(id, std::move(batch), [this](absl::StatusOr<eventlog::Appended> a) {
      absl::MutexLock l(&mu_);
      --inflight_;
      if (!a.ok() && failed_.ok()) failed_ = a.status();
    });
  }
  // All of them at one moment.
  void Aggregate(const std::string& type, const std::string& id,
                 const std::vector<const google::protobuf::Message*>& events, absl::Time at) {
    std::vector<Event> timed;
    for (const auto* e : events) timed.push_back({e, at});
    Aggregate(type, id, timed);
  }
  // Waits for every append; the first failure.
  absl::Status Finish() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(+[](int64_t* n) { return *n == 0; }, &inflight_));
    return failed_;
  }

 private:
  eventlog::Writer* w_;
  const std::string source_;
  absl::Mutex mu_;
  int64_t inflight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_CHAIN_WRITER_H_
