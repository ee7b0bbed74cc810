#ifndef CRM_LIBS_PROJECTION_DAY_NUMBERS_H_
#define CRM_LIBS_PROJECTION_DAY_NUMBERS_H_

// Business numbers "<prefix><yyyymmdd><seq>" (customers C202601010001, contracts
// HT202601010001): unique, not gapless (a failed append leaves a hole). The projection keeps
// each day's highest sequence in row "n/<yyyymmdd>" (Record, while folding the event that
// carries the number); the allocator continues from there after a restart.
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/projection/projection_db.h"

namespace crm::projection {

class DayNumbers {
 public:
  // `db` must outlive this. Days are dates in `zone`.
  DayNumbers(ProjectionDb* db, std::string prefix, absl::TimeZone zone)
      : db_(db), prefix_(std::move(prefix)), zone_(zone) {}

  // The next number of the day of `now`. Thread-safe.
  absl::StatusOr<std::string> Next(absl::Time now);

  // Remembers `number` (if it has the shape "<prefix><yyyymmdd><seq>") as its day's highest
  // sequence when it is.
  static void Record(ProjectionDb& db, Batch& b, absl::string_view prefix, absl::string_view number);

 private:
  ProjectionDb* db_;
  const std::string prefix_;
  const absl::TimeZone zone_;
  absl::Mutex mu_;
  std::map<std::string, int64_t> last_ ABSL_GUARDED_BY(mu_);  // yyyymmdd -> last sequence
};

}  // namespace crm::projection

#endif  // CRM_LIBS_PROJECTION_DAY_NUMBERS_H_
