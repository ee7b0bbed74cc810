#ifndef CRM_LIBS_TESTING_ENGINE_HARNESS_H_
#define CRM_LIBS_TESTING_ENGINE_HARNESS_H_

// The service engines end to end in one process, for tests only: a temporary folder, an
// embedded log, a manual clock, and the engines a test opens on them, each with projections
// of its own. One harness instead of a fixture per test file, so that how an engine is opened,
// waited for and compared with a rebuild is written once.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/caller.h"
#include "libs/common/clock.h"
#include "libs/common/status_testing.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rebuild.h"
#include "services/analytics/analytics_engine.h"
#include "services/customers/customer_engine.h"
#include "services/opportunities/opportunity_engine.h"
#include "services/tasks/task_engine.h"
#include "services/tickets/ticket_engine.h"

namespace crm::testing {

// The engines a harness can open. An engine follows the topics of those before it; open the
// ones a test needs in this order (customers, then opportunities, ...).
enum class Service { kCustomers, kOpportunities, kTasks, kTickets, kAnalytics };

// Opening, closing and reopening are for the test's own thread; the engines it hands out are
// thread-safe as always, and Sync may be called from any thread while nothing is reopened.
class EngineHarness {
 public:
  struct Options {
    // Prefix of the temporary folder (NewTestDir). Default: "engines".
    std::string name = "engines";
    // Where the manual clock starts. Default: 2026-01-01 00:00 UTC (08:00 in Beijing).
    absl::Time start = absl::FromUnixSeconds(1767225600);
    // The engines' clock instead of the manual one, e.g. SystemClock::Get() where tokens and
    // deadlines meet real time. Must outlive the harness. Default: nullptr (the manual clock).
    Clock* clock = nullptr;
  };

  // A new folder and an empty embedded log in it; no engine is open yet.
  static absl::StatusOr<std::unique_ptr<EngineHarness>> Create(Options options);
  // Closes the engines (last opened first), then the log, and removes the folder.
  ~EngineHarness();

  // Opens `service`'s projections in <dir>/<projections> (default: the service's name, e.g.
  // "customers"), catching them up with (or rebuilding them from) the log, then the engine on
  // them; an engine of `service` already open is closed first. A name never used before gives
  // projections built afresh from the log.
  absl::Status Open(Service service, const std::string& projections = "");
  // Closes `service`'s engine and its projections; nothing when it is not open.
  void Close(Service service);

  // The engines, nullptr until opened.
  customers::CustomerEngine* customers() const { return customers_.get(); }
  opportunities::OpportunityEngine* opportunities() const { return opportunities_.get(); }
  tasks::TaskEngine* tasks() const { return tasks_.get(); }
  tickets::TicketEngine* tickets() const { return tickets_.get(); }
  analytics::AnalyticsEngine* analytics() const { return analytics_.get(); }
  // `service`'s projections, nullptr until opened.
  projection::ProjectionDb* db(Service service) const;
  // What `service`'s projections are built from.
  projection::ProjectionSpec Spec(Service service);

  // The embedded log itself (never the log of UseLog).
  eventlog::Log& log() const { return *log_; }
  // The manual clock (which the engines use unless Options::clock names another).
  ManualClock& clock() { return clock_; }
  // The temporary folder; removed with the harness.
  const std::string& dir() const { return dir_; }

  // What a restart after a crash finds: closes every engine (last opened first) and the
  // embedded log, drops the logs of UseLog, and opens the log again from its folder. Open the
  // engines again afterwards (on new projection names to rebuild them from the log).
  absl::Status ReopenLog();

  // Engines opened from now on read and write through `log` (e.g. an eventlog::testing::
  // FaultyLog over log()); nullptr: the embedded log again. The harness keeps every such log
  // until it ends, as an engine opened on one may outlive the next call.
  void UseLog(std::unique_ptr<eventlog::Log> log);

  // Runs `engine`'s asynchronous command and waits for its answer (crm::testing::Call), with
  // the open engine of that type: `h.Sync(&CustomerCommands::Create, kRep, req)`.
  template <typename Engine, typename Req, typename Resp>
  absl::StatusOr<Resp> Sync(void (Engine::*fn)(const Caller&, const Req&,
                                               absl::AnyInvocable<void(absl::StatusOr<Resp>)>),
                            const Caller& caller, const Req& req) {
    Engine* engine = Get<Engine>();
    if (engine == nullptr) return absl::FailedPreconditionError("the engine is not open");
    return Call(engine, fn, caller, req);
  }

  // Waits until `service`'s projections applied what `token` (any service's answer) names.
  // DEADLINE_EXCEEDED after `timeout`.
  absl::Status Await(Service service, const std::string& token, absl::Duration timeout = absl::Seconds(10));

  // Order-independent checksum of `service`'s live projections.
  absl::StatusOr<std::string> Checksum(Service service);
  // `service`'s projections built afresh from the log in a new folder, and their checksum: a
  // test compares it with Checksum() to show that the live rows equal a rebuild.
  absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> Rebuilt(Service service);
  absl::StatusOr<std::string> RebuiltChecksum(Service service);

 private:
  EngineHarness(Options options, std::string dir, std::unique_ptr<eventlog::Log> log);
  template <typename Engine>
  Engine* Get() const;

  ManualClock clock_;
  Clock* engine_clock_;  // Options::clock, else &clock_
  std::string dir_;
  std::unique_ptr<eventlog::Log> log_;
  std::vector<std::unique_ptr<eventlog::Log>> used_logs_;
  eventlog::Log* engine_log_ = nullptr;  // what engines open on: log_ or the last of used_logs_
  std::map<Service, std::unique_ptr<projection::ProjectionDb>> dbs_;
  std::vector<Service> opened_;  // in open order, for closing in reverse
  int rebuilds_ = 0;
  std::unique_ptr<customers::CustomerEngine> customers_;
  std::unique_ptr<opportunities::OpportunityEngine> opportunities_;
  std::unique_ptr<tasks::TaskEngine> tasks_;
  std::unique_ptr<tickets::TicketEngine> tickets_;
  std::unique_ptr<analytics::AnalyticsEngine> analytics_;
};

template <>
inline customers::CustomerEngine* EngineHarness::Get() const { return customers_.get(); }
template <>
inline customers::CustomerCommands* EngineHarness::Get() const {
  return customers_ != nullptr ? &customers_->customer_commands() : nullptr;
}
template <>
inline customers::SettingsCommands* EngineHarness::Get() const {
  return customers_ != nullptr ? &customers_->settings() : nullptr;
}
template <>
inline customers::LeadCommands* EngineHarness::Get() const {
  return customers_ != nullptr ? &customers_->leads() : nullptr;
}
template <>
inline opportunities::OpportunityEngine* EngineHarness::Get() const { return opportunities_.get(); }
template <>
inline tasks::TaskEngine* EngineHarness::Get() const { return tasks_.get(); }
template <>
inline tickets::TicketEngine* EngineHarness::Get() const { return tickets_.get(); }
template <>
inline analytics::AnalyticsEngine* EngineHarness::Get() const { return analytics_.get(); }

}  // namespace crm::testing

#endif  // CRM_LIBS_TESTING_ENGINE_HARNESS_H_
