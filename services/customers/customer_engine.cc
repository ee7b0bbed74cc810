#include "services/customers/customer_engine.h"

#include <algorithm>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/time_util.h"
#include "libs/common/completions.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/sha256.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"
#include "libs/eventlog/envelope.h"
#include "libs/kernel/target_command.h"
#include "libs/projection/rebuild.h"
#include "services/customers/customer_list.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {
namespace {

using namespace internal;  // NOLINT: the engine's own helpers

using common::v1::EventEnvelope;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::util::TimeUtil;
using projection::FromRocks;

constexpr char kSource[] = "/crm/customers";

}  // namespace

absl::StatusOr<std::unique_ptr<CustomerEngine>> CustomerEngine::Open(eventlog::Log* log,
                                                                     projection::ProjectionDb* db,
                                                                     Options options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("CustomerEngine needs a clock");
  std::unique_ptr<CustomerEngine> e(new CustomerEngine(db, std::move(options)));
  const Options& o = e->options_;
  CRM_ASSIGN_OR_RETURN(
      e->writer_,
      projection::AggregateWriter::Open(
          log, db,
          {.topic = o.topic, .partitions = o.partitions, .source = kSource, .tenant = o.tenant,
           .clock = o.clock, .observe_append = o.observe_append},
          [db](const eventlog::Record& r, projection::Batch& b) { return ApplyCustomersRecord(*db, r, b); }));
  e->store_ = std::make_unique<kernel::AggregateStore>(e->writer_.get());
  e->customers_ = std::make_unique<CustomerCommands>(e->store_.get(), db, &e->queries_, o.clock, o.zone);
  e->settings_ = std::make_unique<SettingsCommands>(e->store_.get());
  e->leads_ = std::make_unique<LeadCommands>(e->store_.get(), db, &e->queries_, o.clock);
  // Commands interrupted between their two writes complete before anything else writes; a
  // step the log refuses now stays pending for the scheduler's passes.
  CRM_RETURN_IF_ERROR(e->CompletePendingSteps(absl::Now() + o.pending_steps_budget).status());
  projection::Follower::Options fo;
  fo.topic = o.opportunities_topic;
  CustomerEngine* raw = e.get();
  fo.after_commit = [raw](const std::vector<eventlog::Record>&) {
    if (auto n = raw->ReconcileWins(); !n.ok()) {
      server::LogWarn(absl::StrCat("customers: won opportunities: ", n.status().ToString()));
    }
  };
  CRM_ASSIGN_OR_RETURN(e->opportunities_,
                       projection::Follower::Start(log, db, std::move(fo),
                                                   [db](const eventlog::Record& r, projection::Batch& b) {
                                                     return ApplyOpportunitiesRecordForCustomers(*db, r, b);
                                                   }));
  CRM_RETURN_IF_ERROR(e->ReconcileWins().status());
  projection::Follower::Options to;
  to.topic = o.tasks_topic;
  to.after_commit = [raw](const std::vector<eventlog::Record>&) {
    if (auto n = raw->ReconcileTaskNotes(); !n.ok()) {
      server::LogWarn(absl::StrCat("customers: task notes: ", n.status().ToString()));
    }
  };
  CRM_ASSIGN_OR_RETURN(e->tasks_, projection::Follower::Start(log, db, std::move(to),
                                                              [db](const eventlog::Record& r, projection::Batch& b) {
                                                                return ApplyTasksRecordForCustomers(*db, r, b);
                                                              }));
  CRM_RETURN_IF_ERROR(e->ReconcileTaskNotes().status());
  return e;
}

CustomerEngine::~CustomerEngine() {
  tasks_.reset();
  opportunities_.reset();  // no reaction may start once the writer is gone
  writer_.reset();         // before store_: the writer may still settle appends through it
}

projection::ProjectionSpec CustomerEngine::Spec(const std::string& topic, int32_t partitions,
                                                const std::string& opportunities_topic,
                                                const std::string& tasks_topic) {
  projection::ProjectionSpec spec;
  spec.version = kProjectionVersion;
  spec.sources.push_back(projection::FoldSource(topic, true, partitions, &ApplyCustomersRecord));
  spec.sources.push_back(projection::FoldSource(opportunities_topic, false, 0, &ApplyOpportunitiesRecordForCustomers));
  spec.sources.push_back(projection::FoldSource(tasks_topic, false, 0, &ApplyTasksRecordForCustomers));
  return spec;
}

absl::StatusOr<int64_t> CustomerEngine::Rebuild(eventlog::Log& log, const std::string& topic,
                                                const std::string& path) {
  return projection::Rebuild(log, Spec(topic, kPartitions), path);
}

absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> CustomerEngine::OpenProjections(
    eventlog::Log& log, const std::string& path, const Options& options, int64_t* rebuilt) {
  return projection::OpenProjections(
      log, Spec(options.topic, options.partitions, options.opportunities_topic, options.tasks_topic), path, rebuilt);
}

absl::StatusOr<int64_t> CustomerEngine::RebuildAndSwap(eventlog::Log& log, const std::string& topic,
                                                       const std::string& live_path) {
  return projection::RebuildAndSwap(log, Spec(topic, kPartitions), live_path);
}

absl::StatusOr<std::string> CustomerEngine::Checksum(projection::ProjectionDb& db) { return projection::Checksum(db); }

}  // namespace crm::customers
