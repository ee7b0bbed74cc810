#ifndef CRM_SERVICES_ANALYTICS_FACTS_H_
#define CRM_SERVICES_ANALYTICS_FACTS_H_

// The two row shapes every analytics report reads, both bitemporal (business time for ranges
// and periods, log time for as_of), so a report as of T equals the one over the log cut at T:
//   af/<kind>/<occurred TimeKey><event id>[/<n>]     PointFact: a dated thing that happened
//   <prefix><subject>/<recorded TimeKey><event id>   a version of a subject's attributes; a
//                                                    report as of T reads the last one by T
// and the periods (day, week from Monday, month of local time) reports group by.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crm/analytics/v1/analytics_rows.pb.h"
#include "crm/common/v1/envelope.pb.h"
#include "libs/common/proto_time.h"
#include "libs/common/status_macros.h"
#include "libs/projection/projection_db.h"
#include "libs/projection/rows.h"

namespace crm::analytics {

// Local time of every report: China Standard Time.
inline absl::TimeZone ReportZone() { return absl::FixedTimeZone(8 * 3600); }

enum class Period { kDay, kWeek, kMonth };

// The start of the day, week (Monday) or month of `t` in `zone`.
absl::Time PeriodStart(absl::Time t, Period p, absl::TimeZone zone);
absl::Time NextPeriod(absl::Time start, Period p, absl::TimeZone zone);

// The periods of [from, to): their starts in order and the index of the one holding a moment.
class Periods {
 public:
  // INVALID_ARGUMENT for an empty range or more than 10000 periods.
  static absl::StatusOr<Periods> Make(absl::Time from, absl::Time to, Period p, absl::TimeZone zone = ReportZone());
  const std::vector<absl::Time>& starts() const { return starts_; }
  size_t size() const { return starts_.size(); }
  // The index of the period holding `t`, which must lie in [from, to).
  size_t Of(absl::Time t) const;

 private:
  Period period_ = Period::kDay;
  absl::TimeZone zone_;
  std::vector<absl::Time> starts_;
  std::map<absl::Time, size_t> index_;
};

// af/<kind>/<at TimeKey><event id>, "/<n>" appended when n > 0 (several facts of one kind
// from one event).
std::string FactKey(absl::string_view kind, absl::Time at, const common::v1::EventEnvelope& e, int n = 0);

// A fact of `e`: kind, subject and both times set (occurred_at: `at`); count 1.
v1::PointFact MakeFact(absl::string_view kind, const std::string& subject, absl::Time at,
                       const common::v1::EventEnvelope& e);

void PutFact(projection::Batch& batch, const v1::PointFact& f, const common::v1::EventEnvelope& e, int n = 0);

struct FactFilter {
  absl::Time from = absl::InfinitePast(), to = absl::InfiniteFuture();  // business time
  absl::Time as_of = absl::InfiniteFuture();                              // log time
  std::string owner_id, team_id;                                           // empty: any
};

// The facts of `kind` that happened in [from, to), were recorded by as_of and match the
// owner and team filters, in time order. DATA_LOSS for an undecodable row.
absl::Status ScanFacts(rocksdb::DB* db, absl::string_view kind, const FactFilter& f,
                       absl::FunctionRef<void(const v1::PointFact&)> fn);

// <prefix><subject>/<recorded TimeKey><event id>.
std::string VersionKey(absl::string_view prefix, absl::string_view subject, const common::v1::EventEnvelope& e);

// For each subject under `prefix` (subjects hold no '/'), the last version recorded by as_of:
// fn(subject, row). `M` must have recorded_at.
template <typename M>
absl::Status ScanVersions(rocksdb::DB* db, absl::string_view prefix, absl::Time as_of,
                          absl::FunctionRef<void(const std::string& subject, const M& row)> fn);

// Whether an update event's changed_fields name `field`; `fields` null (a creation): all do.
inline bool Changed(const google::protobuf::RepeatedPtrField<std::string>* fields, absl::string_view field) {
  return fields == nullptr || std::find(fields->begin(), fields->end(), field) != fields->end();
}

// Parses a row; DATA_LOSS naming the key when it does not parse.
absl::Status ParseRow(const rocksdb::Slice& key, const rocksdb::Slice& value, google::protobuf::Message* m);

template <typename M>
absl::Status ScanVersions(rocksdb::DB* db, absl::string_view prefix, absl::Time as_of,
                          absl::FunctionRef<void(const std::string& subject, const M& row)> fn) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice p(prefix.data(), prefix.size());
  std::string subject;
  M last;
  bool have = false;
  auto flush = [&] {
    if (have) fn(subject, last);
    have = false;
  };
  for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next()) {
    const absl::string_view rest(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    const absl::string_view s = rest.substr(0, rest.find('/'));
    if (s != subject) {
      flush();
      subject = std::string(s);
    }
    M row;
    CRM_RETURN_IF_ERROR(ParseRow(it->key(), it->value(), &row));
    if (FromProto(row.recorded_at()) > as_of) continue;
    last = std::move(row);
    have = true;
  }
  flush();
  return projection::FromRocks(it->status(), "scan versions");
}

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_FACTS_H_
