#ifndef CRM_TOOLS_BENCH_CRMD_H_
#define CRM_TOOLS_BENCH_CRMD_H_

// crmd in crm-bench's process for the workloads over gRPC: the embedded log under a folder,
// the customers and opportunities hosts (and, when asked, tasks, tickets and analytics) with their
// schedulers off, the gRPC runtime on a free loopback port, and an admin token.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "libs/eventlog/log.h"
#include "libs/server/metrics.h"
#include "libs/server/runtime.h"
#include "services/analytics/analytics_host.h"
#include "services/customers/customers_host.h"
#include "services/opportunities/opportunities_host.h"
#include "services/tasks/tasks_host.h"
#include "services/tickets/tickets_host.h"

namespace crm::bench {

class InProcessCrmd {
 public:
  struct Hosts {
    bool tasks = false;
    bool tickets = false;
    bool analytics = false;
  };
  // Serving once this returns.
  static absl::StatusOr<std::unique_ptr<InProcessCrmd>> Start(const std::string& dir, Hosts hosts);
  // Stops serving, then closes the hosts and the log.
  ~InProcessCrmd();

  eventlog::Log& log() { return *log_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const std::string& token() const { return token_; }
  tickets::TicketsHost* tickets() { return tickets_.get(); }
  analytics::AnalyticsHost* analytics() { return analytics_.get(); }

 private:
  InProcessCrmd() = default;

  std::unique_ptr<eventlog::Log> log_;
  std::unique_ptr<server::Metrics> metrics_;
  std::unique_ptr<server::Authenticator> auth_;
  std::unique_ptr<server::Runtime> runtime_;
  std::unique_ptr<customers::CustomersHost> customers_;
  std::unique_ptr<opportunities::OpportunitiesHost> opportunities_;
  std::unique_ptr<tasks::TasksHost> tasks_;
  std::unique_ptr<tickets::TicketsHost> tickets_;
  std::unique_ptr<analytics::AnalyticsHost> analytics_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
};

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_CRMD_H_
