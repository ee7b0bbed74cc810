#ifndef CRM_SERVICES_TICKETS_SLA_H_
#define CRM_SERVICES_TICKETS_SLA_H_

// SLA clocks (服务时效) computed from a ticket's history: business time only (a
// BusinessCalendar), stopped while the ticket waits in a pausing state. Pure, no I/O: the
// same history under another policy answers "what if the target had been 4 hours".
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "services/tickets/business_calendar.h"

namespace crm::tickets {

// What the clocks need of a ticket's history.
struct TicketTimeline {
  absl::Time created;
  // The states the ticket was in, from creation on: when it entered each, whether the clock
  // stops there, whether it is final (resolved). The first step is at `created`.
  struct Step {
    absl::Time at;
    bool pauses = false;
    bool final = false;
  };
  std::vector<Step> steps;
  // The first response to the customer (a public comment by staff), if any.
  std::optional<absl::Time> first_response;
};

struct SlaTargets {
  absl::Duration first_response;  // zero: no first-response target
  absl::Duration resolution;      // zero: no resolution target
  // A warning when this share of a target is used up (0-100). 0: no warning.
  int warning_percent = 80;
};

// One clock as of a moment.
struct SlaClock {
  bool has_target = false;
  absl::Duration target;
  absl::Duration elapsed;   // business time counted so far (or until it stopped)
  bool stopped = false;     // met or breached for good: responded / resolved
  bool paused = false;      // not running now (a pausing state)
  bool breached = false;
  absl::Time breached_at = absl::InfiniteFuture();  // when elapsed reached the target
  absl::Time warn_at = absl::InfiniteFuture();      // when elapsed reached the warning share
  // While running: when it will breach if nothing changes; InfiniteFuture otherwise.
  absl::Time due = absl::InfiniteFuture();
};

struct SlaStatus {
  SlaClock first_response;
  SlaClock resolution;
};

// The clocks of `t` under `targets` and `calendar`, as of `now` (only history up to `now`
// counts).
SlaStatus EvaluateSla(const TicketTimeline& t, const SlaTargets& targets, const BusinessCalendar& calendar,
                      absl::Time now);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_SLA_H_
