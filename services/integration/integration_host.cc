#include "services/integration/integration_host.h"

#include <filesystem>
#include <map>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"

#include "absl/strings/str_cat.h"
#include "libs/server/logging.h"

namespace crm::integration {

void IntegrationHost::AddFlags(CLI::App& app, Flags& f) {
  app.add_option("--customers-addr", f.customers_address, "CustomerService the inbound commands go to")
      ->envname("CRM_CUSTOMERS_ADDR")
      ->capture_default_str();
  app.add_option("--opportunities-addr", f.opportunities_address, "ContractService the inbound commands go to")
      ->envname("CRM_OPPORTUNITIES_ADDR")
      ->capture_default_str();
  app.add_option("--relay", f.relay, "Republish every event on crm.public.events.v1 (CloudEvents JSON)")
      ->capture_default_str();
  app.add_option("--inbound", f.inbound, "Apply crm.inbound.v1 (ERP/OA CloudEvents) through the services")
      ->capture_default_str();
}

absl::StatusOr<std::unique_ptr<IntegrationHost>> IntegrationHost::Open(eventlog::Log* log, server::Runtime* runtime,
                                                                      Options options, Flags flags) {
  std::unique_ptr<IntegrationHost> h(new IntegrationHost(std::move(options)));
  std::error_code ec;
  std::filesystem::create_directories(h->options_.dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", h->options_.dir, ": ", ec.message()));
  if (flags.relay) {
    auto relay = PublicEventsRelay::Start(log, {.dir = h->options_.dir + "/public-relay"});
    if (!relay.ok()) return relay.status();
    h->relay_ = *std::move(relay);
  }
  if (flags.inbound) {
    h->sink_ = std::make_unique<GrpcCommandSink>(GrpcCommandSink::Options{
        .customers_address = flags.customers_address,
        .opportunities_address = flags.opportunities_address,
        .signing_key = h->options_.signing_key,
        .max_token_lifetime = h->options_.max_token_lifetime});
    auto inbound = InboundProcessor::Start(log, h->sink_.get(), {.dir = h->options_.dir + "/inbound"});
    if (!inbound.ok()) return inbound.status();
    h->inbound_ = *std::move(inbound);
  }
  return h;
}

void IntegrationHost::StartLoops() {
  auto& events = prometheus::BuildCounter()
                     .Name("crm_integration_events_total")
                     .Help("Events the integration handled: published on crm.public.events.v1; inbound applied, "
                           "duplicate (id seen) or dead_lettered")
                     .Register(options_.metrics->registry());
  auto& failing = prometheus::BuildGauge()
                      .Name("crm_integration_failing")
                      .Help("1 while a part is halted on an error it retries (see the logs), else 0")
                      .Register(options_.metrics->registry());
  struct Seen {
    prometheus::Counter* counter;
    int64_t last = 0;
    void Set(int64_t now) {
      if (now > last) counter->Increment(static_cast<double>(now - last));
      last = now;
    }
  };
  auto seen = std::make_shared<std::map<std::string, Seen>>();
  for (const char* kind : {"published", "applied", "duplicate", "dead_lettered"}) {
    (*seen)[kind] = Seen{&events.Add({{"kind", kind}})};
  }
  prometheus::Gauge& relay_failing = failing.Add({{"part", "relay"}});
  prometheus::Gauge& inbound_failing = failing.Add({{"part", "inbound"}});
  loops_.Every(absl::Seconds(1), [this, seen, &relay_failing, &inbound_failing] {
    if (relay_) {
      (*seen)["published"].Set(relay_->published());
      relay_failing.Set(relay_->status().ok() ? 0 : 1);
    }
    if (inbound_) {
      const InboundProcessor::Stats st = inbound_->stats();
      (*seen)["applied"].Set(st.applied);
      (*seen)["duplicate"].Set(st.duplicates);
      (*seen)["dead_lettered"].Set(st.dead_lettered);
      inbound_failing.Set(inbound_->status().ok() ? 0 : 1);
    }
  });
}

}  // namespace crm::integration
