#include "services/registry/registry.h"

#include <vector>

#include "services/analytics/analytics_module.h"
#include "services/customers/customers_module.h"
#include "services/integration/integration_module.h"
#include "services/opportunities/opportunities_module.h"
#include "services/tasks/tasks_module.h"
#include "services/tickets/tickets_module.h"

namespace crm::registry {

std::span<const server::ServiceModule* const> Modules() {
  static const std::vector<const server::ServiceModule*>* const kModules = new std::vector<const server::ServiceModule*>{
      &customers::Module(),
      &opportunities::Module(),
      &tasks::Module(),
      &tickets::Module(),
      &analytics::Module(),
      &integration::Module(),
  };
  return *kModules;
}

std::span<const server::ServiceModule* const> CrmdModules() {
  static const std::vector<const server::ServiceModule*>* const kCrmd = [] {
    auto* v = new std::vector<const server::ServiceModule*>();
    for (const server::ServiceModule* m : Modules()) {
      if (m->in_crmd) v->push_back(m);
    }
    return v;
  }();
  return *kCrmd;
}

const server::ServiceModule* FindModule(std::string_view name) {
  for (const server::ServiceModule* m : Modules()) {
    if (m->name == name) return m;
  }
  return nullptr;
}

}  // namespace crm::registry
