#ifndef CRM_SERVICES_REGISTRY_REGISTRY_H_
#define CRM_SERVICES_REGISTRY_REGISTRY_H_

// Every service of the backbone, as crmd, the single-service mains, crm-bench, crmctl and the
// tests compose them. A new service is its folder (with its module, main.cc and CMake target)
// and one line in registry.cc.
#include <span>
#include <string_view>

#include "libs/server/service_module.h"

namespace crm::registry {

// Every module, in crmd's order: crmd opens them in this order and closes them in the reverse
// one (ModuleSet). Lives for the process.
std::span<const server::ServiceModule* const> Modules();

// The modules crmd runs (ServiceModule::in_crmd), in Modules() order.
std::span<const server::ServiceModule* const> CrmdModules();

// The module named `name`; null when there is none.
const server::ServiceModule* FindModule(std::string_view name);

}  // namespace crm::registry

#endif  // CRM_SERVICES_REGISTRY_REGISTRY_H_
