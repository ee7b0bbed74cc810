#include "libs/testing/engine_harness.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/common/temp_dir_testing.h"
#include "libs/eventlog/embedded_log.h"

namespace crm::testing {
namespace {

const char* NameOf(Service service) {
  switch (service) {
    case Service::kCustomers:
      return "customers";
    case Service::kOpportunities:
      return "opportunities";
    case Service::kTasks:
      return "tasks";
    case Service::kTickets:
      return "tickets";
    case Service::kAnalytics:
      return "analytics";
  }
  return "unknown";
}

// Opens `Engine` on `db`, into `slot`.
template <typename Engine>
absl::Status OpenInto(eventlog::Log* log, projection::ProjectionDb* db, typename Engine::Options options,
                      std::unique_ptr<Engine>* slot) {
  auto engine = Engine::Open(log, db, std::move(options));
  if (!engine.ok()) return engine.status();
  *slot = *std::move(engine);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EngineHarness>> EngineHarness::Create(Options options) {
  std::string dir = NewTestDir(options.name);
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<eventlog::Log> log, eventlog::OpenEmbeddedLog({.path = dir + "/log"}));
  return std::unique_ptr<EngineHarness>(new EngineHarness(std::move(options), std::move(dir), std::move(log)));
}

EngineHarness::EngineHarness(Options options, std::string dir, std::unique_ptr<eventlog::Log> log)
    : clock_(options.start),
      engine_clock_(options.clock != nullptr ? options.clock : &clock_),
      dir_(std::move(dir)),
      log_(std::move(log)),
      engine_log_(log_.get()) {}

EngineHarness::~EngineHarness() {
  while (!opened_.empty()) Close(opened_.back());
  used_logs_.clear();
  log_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::Status EngineHarness::ReopenLog() {
  while (!opened_.empty()) Close(opened_.back());
  used_logs_.clear();
  engine_log_ = nullptr;
  log_.reset();
  CRM_ASSIGN_OR_RETURN(log_, eventlog::OpenEmbeddedLog({.path = dir_ + "/log"}));
  engine_log_ = log_.get();
  return absl::OkStatus();
}

void EngineHarness::UseLog(std::unique_ptr<eventlog::Log> log) {
  engine_log_ = log == nullptr ? log_.get() : log.get();
  if (log != nullptr) used_logs_.push_back(std::move(log));
}

projection::ProjectionSpec EngineHarness::Spec(Service service) {
  switch (service) {
    case Service::kCustomers:
      return customers::CustomerEngine::Spec(topics::kCustomers, topics::kPartitions);
    case Service::kOpportunities:
      return opportunities::OpportunityEngine::Spec({.clock = engine_clock_});
    case Service::kTasks:
      return tasks::TaskEngine::Spec({.clock = engine_clock_});
    case Service::kTickets:
      return tickets::TicketEngine::Spec({.clock = engine_clock_});
    case Service::kAnalytics:
      return analytics::AnalyticsEngine::Spec({.clock = engine_clock_});
  }
  return {};
}

absl::Status EngineHarness::Open(Service service, const std::string& projections) {
  Close(service);
  int64_t rebuilt = 0;
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<projection::ProjectionDb> db,
                       projection::OpenProjections(*engine_log_, Spec(service),
                                                   absl::StrCat(dir_, "/", projections.empty() ? NameOf(service) : projections),
                                                   &rebuilt));
  projection::ProjectionDb* p = db.get();
  dbs_[service] = std::move(db);
  opened_.push_back(service);
  switch (service) {
    case Service::kCustomers:
      return OpenInto(engine_log_, p, {.clock = engine_clock_}, &customers_);
    case Service::kOpportunities:
      return OpenInto(engine_log_, p, {.clock = engine_clock_}, &opportunities_);
    case Service::kTasks:
      return OpenInto(engine_log_, p, {.clock = engine_clock_}, &tasks_);
    case Service::kTickets:
      return OpenInto(engine_log_, p, {.clock = engine_clock_}, &tickets_);
    case Service::kAnalytics:
      return OpenInto(engine_log_, p, {.clock = engine_clock_}, &analytics_);
  }
  return absl::InvalidArgumentError("unknown service");
}

void EngineHarness::Close(Service service) {
  switch (service) {
    case Service::kCustomers:
      customers_.reset();
      break;
    case Service::kOpportunities:
      opportunities_.reset();
      break;
    case Service::kTasks:
      tasks_.reset();
      break;
    case Service::kTickets:
      tickets_.reset();
      break;
    case Service::kAnalytics:
      analytics_.reset();
      break;
  }
  dbs_.erase(service);
  opened_.erase(std::remove(opened_.begin(), opened_.end(), service), opened_.end());
}

projection::ProjectionDb* EngineHarness::db(Service service) const {
  auto it = dbs_.find(service);
  return it == dbs_.end() ? nullptr : it->second.get();
}

absl::Status EngineHarness::Await(Service service, const std::string& token, absl::Duration timeout) {
  projection::ProjectionDb* p = db(service);
  if (p == nullptr) return absl::FailedPreconditionError(absl::StrCat(NameOf(service), " is not open"));
  return projection::WaitForToken(*p, token, "token", absl::Now() + timeout);
}

absl::StatusOr<std::string> EngineHarness::Checksum(Service service) {
  projection::ProjectionDb* p = db(service);
  if (p == nullptr) return absl::FailedPreconditionError(absl::StrCat(NameOf(service), " is not open"));
  return projection::Checksum(*p);
}

absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> EngineHarness::Rebuilt(Service service) {
  const std::string path = absl::StrCat(dir_, "/", NameOf(service), "-rebuilt-", rebuilds_++);
  CRM_RETURN_IF_ERROR(projection::Rebuild(*log_, Spec(service), path).status());
  return projection::ProjectionDb::Open({.path = path});
}

absl::StatusOr<std::string> EngineHarness::RebuiltChecksum(Service service) {
  CRM_ASSIGN_OR_RETURN(std::unique_ptr<projection::ProjectionDb> rebuilt, Rebuilt(service));
  return projection::Checksum(*rebuilt);
}

}  // namespace crm::testing
