#ifndef CRM_SERVICES_ANALYTICS_FUNNEL_H_
#define CRM_SERVICES_ANALYTICS_FUNNEL_H_

// The sales funnel (销售漏斗) read model of the analytics service and its report, with time
// travel: facts are bitemporal (occurred_at for the range, recorded_at for as_of), so a report
// as of T equals the report computed on the log cut at T. Depends on the opportunities'
// event schemas only, never on their code.
//   ao/<opportunity id>                          OpportunityFact (the latest known)
//   av/<entered TimeKey><opportunity id>/<n>     StageVisitFact, the n-th stay (4 digits)
//   ap/<pipeline id>                             PipelineFact (stage order from PipelinesSet)
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "services/analytics/facts.h"

namespace crm::analytics {

// Folds one record of the opportunities topic into the rows above. Events of other
// aggregates and those that change none of these facts are skipped; events applied already
// (by aggregate version) are skipped. DATA_LOSS for a payload that does not match its type.
absl::Status ApplyOpportunitiesRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                      projection::Batch& batch);

struct FunnelQuery {
  // The cohort: opportunities created in [from, to) (business time).
  absl::Time from = absl::InfinitePast();
  absl::Time to = absl::InfiniteFuture();
  // Only what the log had recorded by then. InfiniteFuture: everything.
  absl::Time as_of = absl::InfiniteFuture();
  std::string pipeline_id;  // empty: every pipeline, stages merged by id
  std::string owner_id;     // empty: any (the owner when the opportunity was created)
  std::string team_id;      // empty: any (likewise)
  // The cohort split by creation period, when the range is finite.
  Period group_by = Period::kMonth;
};

struct FunnelStage {
  std::string stage_id, stage_name;
  std::string kind;  // OPEN, WON or LOST
  // Opportunities of the cohort that reached the stage or one after it (open stages and won);
  // that ended in it (lost).
  int64_t reached = 0;
  // Sum of their amounts as of entering the stage (minor units; mixed currencies are summed
  // per currency by the caller's choice of pipeline, not converted).
  int64_t amount_minor = 0;
  // reached(next stage) / reached(this) * 100 for open stages (the last open stage's next is
  // won); 0 when none reached it.
  double conversion_percent = 0;
  // Mean time of the stays in it that had ended as of as_of; 0 when none had.
  absl::Duration average_stay;
  int64_t stays_ended = 0;
};

struct FunnelReport {
  int64_t opportunities = 0;
  int64_t won = 0, lost = 0;
  double win_rate_percent = 0;  // won / (won + lost) * 100
  std::vector<FunnelStage> stages;
  // Per creation period of the range (none when it is infinite): the cohort's size and how
  // it ended as of as_of.
  struct Bucket {
    absl::Time start;
    int64_t opportunities = 0, won = 0, lost = 0, won_amount_minor = 0;
    bool operator==(const Bucket&) const = default;
  };
  std::vector<Bucket> periods;
};

// The funnel over the committed rows of `db`. Stage order and names: the pipeline's asked for
// (or the one the whole cohort is in) as its PipelinesSet recorded it by as_of, or the
// opportunities service's default pipeline for "default"; else the order the opportunities'
// forward moves imply (ties by stage id), won then lost last, named as the default pipeline
// names them.
absl::StatusOr<FunnelReport> Funnel(rocksdb::DB* db, const FunnelQuery& q);

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_FUNNEL_H_
