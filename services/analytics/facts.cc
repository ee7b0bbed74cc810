#include "services/analytics/facts.h"

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "libs/projection/aggregate_writer.h"

namespace crm::analytics {

absl::Time PeriodStart(absl::Time t, Period p, absl::TimeZone zone) {
  const absl::CivilDay day = absl::ToCivilDay(t, zone);
  switch (p) {
    case Period::kDay: return absl::FromCivil(day, zone);
    case Period::kWeek: return absl::FromCivil(absl::PrevWeekday(day + 1, absl::Weekday::monday), zone);
    case Period::kMonth: return absl::FromCivil(absl::CivilMonth(day), zone);
  }
  return absl::FromCivil(day, zone);
}

absl::Time NextPeriod(absl::Time start, Period p, absl::TimeZone zone) {
  const absl::CivilDay day = absl::ToCivilDay(start, zone);
  switch (p) {
    case Period::kDay: return absl::FromCivil(day + 1, zone);
    case Period::kWeek: return absl::FromCivil(day + 7, zone);
    case Period::kMonth: return absl::FromCivil(absl::CivilMonth(day) + 1, zone);
  }
  return absl::FromCivil(day + 1, zone);
}

absl::StatusOr<Periods> Periods::Make(absl::Time from, absl::Time to, Period p, absl::TimeZone zone) {
  if (to <= from) return absl::InvalidArgumentError("an empty range");
  Periods out;
  out.period_ = p;
  out.zone_ = zone;
  for (absl::Time s = PeriodStart(from, p, zone); s < to; s = NextPeriod(s, p, zone)) {
    out.index_[s] = out.starts_.size();
    out.starts_.push_back(s);
    if (out.starts_.size() > 10000) return absl::InvalidArgumentError("more than 10000 periods: group by a longer one");
  }
  return out;
}

size_t Periods::Of(absl::Time t) const { return index_.at(PeriodStart(t, period_, zone_)); }

std::string FactKey(absl::string_view kind, absl::Time at, const common::v1::EventEnvelope& e, int n) {
  std::string key = absl::StrCat("af/", kind, "/", projection::TimeKey(at), e.event_id());
  if (n > 0) absl::StrAppend(&key, "/", n);
  return key;
}

v1::PointFact MakeFact(absl::string_view kind, const std::string& subject, absl::Time at,
                       const common::v1::EventEnvelope& e) {
  v1::PointFact f;
  f.set_kind(std::string(kind));
  f.set_subject_id(subject);
  *f.mutable_occurred_at() = ToProto(at);
  *f.mutable_recorded_at() = ToProto(projection::RecordedAt(e));
  f.set_count(1);
  return f;
}

void PutFact(projection::Batch& batch, const v1::PointFact& f, const common::v1::EventEnvelope& e, int n) {
  batch.Put(FactKey(f.kind(), FromProto(f.occurred_at()), e, n), projection::DeterministicBytes(f));
}

absl::Status ParseRow(const rocksdb::Slice& key, const rocksdb::Slice& value, google::protobuf::Message* m) {
  if (!m->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrCat("undecodable row ", key.ToString(true)));
  }
  return absl::OkStatus();
}

absl::Status ScanFacts(rocksdb::DB* db, absl::string_view kind, const FactFilter& q,
                       absl::FunctionRef<void(const v1::PointFact&)> fn) {
  const std::string prefix = absl::StrCat("af/", kind, "/");
  const std::string end = q.to == absl::InfiniteFuture() ? "" : absl::StrCat(prefix, projection::TimeKey(q.to));
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(q.from == absl::InfinitePast() ? prefix : absl::StrCat(prefix, projection::TimeKey(q.from)));
       it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!end.empty() && it->key().compare(end) >= 0) break;
    v1::PointFact f;
    CRM_RETURN_IF_ERROR(ParseRow(it->key(), it->value(), &f));
    if (FromProto(f.recorded_at()) > q.as_of) continue;
    if (!q.owner_id.empty() && f.owner_id() != q.owner_id) continue;
    if (!q.team_id.empty() && f.team_id() != q.team_id) continue;
    fn(f);
  }
  return projection::FromRocks(it->status(), "scan facts");
}

std::string VersionKey(absl::string_view prefix, absl::string_view subject, const common::v1::EventEnvelope& e) {
  return absl::StrCat(prefix, subject, "/", projection::TimeKey(projection::RecordedAt(e)), e.event_id());
}

}  // namespace crm::analytics
