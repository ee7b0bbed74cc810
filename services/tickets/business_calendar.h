#ifndef CRM_SERVICES_TICKETS_BUSINESS_CALENDAR_H_
#define CRM_SERVICES_TICKETS_BUSINESS_CALENDAR_H_

// Business time for SLA clocks: working windows per weekday, holidays and make-up workdays
// (调休). Pure, no I/O.
#include <array>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "crm/tickets/v1/tickets_events.pb.h"

namespace crm::tickets {

class BusinessCalendar {
 public:
  // INVALID_ARGUMENT naming "<prefix>.<part>" for a weekday outside 1-7, a window outside the
  // day or empty, overlapping windows of a day, a malformed or repeated date, a day both a
  // holiday and a workday, or an offset beyond ±14 hours.
  static absl::StatusOr<BusinessCalendar> Make(const v1::BusinessCalendar& c, const std::string& prefix);
  // Around the clock, every day (for policies without business hours).
  static BusinessCalendar AlwaysOpen();

  // The working time inside [from, to); zero when to <= from.
  absl::Duration Between(absl::Time from, absl::Time to) const;
  // The moment `d` of working time has passed after `from` (at the end of the window where it
  // runs out); InfiniteFuture when the calendar has no working time in the next ten years.
  absl::Time Add(absl::Time from, absl::Duration d) const;

 private:
  // [start, end) minutes of working windows on `day`.
  const std::vector<std::pair<int, int>>& WindowsOn(absl::CivilDay day) const;

  std::array<std::vector<std::pair<int, int>>, 7> windows_;  // Monday = 0
  std::set<absl::CivilDay> holidays_, workdays_;
  absl::TimeZone zone_ = absl::FixedTimeZone(8 * 3600);
};

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_BUSINESS_CALENDAR_H_
