#include "libs/server/service_projections.h"

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/server/logging.h"

namespace crm::server {

absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> OpenServiceProjections(eventlog::Log& log,
                                                                                const projection::ProjectionSpec& spec,
                                                                                const std::string& dir, bool rebuild,
                                                                                const std::string& service) {
  if (rebuild) {
    const absl::Time t0 = absl::Now();
    CRM_ASSIGN_OR_RETURN(int64_t n, projection::RebuildAndSwap(log, spec, dir));
    LogInfo(absl::StrCat("rebuilt ", service, " projections from ", n, " events in ",
                         absl::FormatDuration(absl::Now() - t0)));
  }
  int64_t rebuilt = 0;
  const absl::Time t0 = absl::Now();
  CRM_ASSIGN_OR_RETURN(auto db, projection::OpenProjections(log, spec, dir, &rebuilt));
  if (rebuilt > 0) {
    LogInfo(absl::StrCat(service, " projections were built by other code: rebuilt from ", rebuilt, " events in ",
                         absl::FormatDuration(absl::Now() - t0)));
  }
  return db;
}

}  // namespace crm::server
