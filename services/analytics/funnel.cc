#include "services/analytics/funnel.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/types/optional.h"
#include "absl/strings/str_cat.h"
#include "crm/analytics/v1/analytics_rows.pb.h"
#include "crm/opportunities/v1/opportunities_events.pb.h"
#include "libs/common/proto_time.h"
#include "libs/common/money.h"
#include "libs/common/status_macros.h"
#include "libs/eventlog/envelope.h"
#include "libs/projection/aggregate_writer.h"
#include "libs/projection/rows.h"
#include "libs/topics/contracts.h"
#include "libs/topics/default_pipeline.h"
#include "services/analytics/facts.h"
#include "services/analytics/receivables.h"

namespace crm::analytics {
namespace {

namespace ov1 = crm::opportunities::v1;
using v1::OpportunityFact;
using v1::StageVisitFact;

constexpr char kVisitPrefix[] = "av/";
constexpr char kPipelinePrefix[] = "ap/";

v1::PipelineFact PipelineFactOf(const ov1::Pipeline& p) {
  v1::PipelineFact f;
  f.set_id(p.id());
  f.set_name(p.name());
  for (const auto& s : p.stages()) {
    f.add_stage_ids(s.id());
    f.add_stage_names(s.name());
    f.add_stage_kinds(s.kind() == ov1::STAGE_KIND_WON ? "WON" : s.kind() == ov1::STAGE_KIND_LOST ? "LOST" : "OPEN");
  }
  return f;
}

// Applies one opportunity event to its fact and its stage visits.
class Folder {
 public:
  Folder(projection::ProjectionDb& db, projection::Batch& b, const common::v1::EventEnvelope& e)
      : db_(db), b_(b), e_(e), at_(ToProto(projection::OccurredAt(e))), recorded_(ToProto(projection::RecordedAt(e))) {}

  absl::Status Run() {
    const std::string key = absl::StrCat("ao/", e_.aggregate_id());
    CRM_RETURN_IF_ERROR(projection::ReadRow(db_, b_, key, &f_).status());
    if (e_.aggregate_version() <= f_.version()) return absl::OkStatus();  // applied already
    if (eventlog::Is<ov1::OpportunityCreated>(e_)) {
      CRM_ASSIGN_OR_RETURN(auto c, eventlog::PayloadAs<ov1::OpportunityCreated>(e_));
      f_.set_pipeline_id(c.pipeline_id());
      f_.set_customer_id(c.profile().customer_id());
      f_.set_owner_id(c.profile().owner_id());
      f_.set_team_id(c.profile().team_id());
      f_.set_amount_minor(c.profile().amount().amount_minor());
      f_.set_currency(c.profile().amount().currency());
      CRM_RETURN_IF_ERROR(Enter(c.stage_id(), ""));
    } else if (eventlog::Is<ov1::OpportunityUpdated>(e_)) {
      CRM_ASSIGN_OR_RETURN(auto u, eventlog::PayloadAs<ov1::OpportunityUpdated>(e_));
      for (const auto& field : u.changed_fields()) {
        if (field == "customer_id") f_.set_customer_id(u.profile().customer_id());
        if (field == "owner_id") f_.set_owner_id(u.profile().owner_id());
        if (field == "team_id") f_.set_team_id(u.profile().team_id());
        if (field == "amount") {
          f_.set_amount_minor(u.profile().amount().amount_minor());
          f_.set_currency(u.profile().amount().currency());
        }
      }
    } else if (eventlog::Is<ov1::OpportunityStageChanged>(e_)) {
      CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<ov1::OpportunityStageChanged>(e_));
      CRM_RETURN_IF_ERROR(Leave(m.to_stage_id(), m.backwards()));
      CRM_RETURN_IF_ERROR(Enter(m.to_stage_id(), ""));
    } else if (eventlog::Is<ov1::OpportunityWon>(e_)) {
      CRM_ASSIGN_OR_RETURN(auto w, eventlog::PayloadAs<ov1::OpportunityWon>(e_));
      if (w.has_amount() && w.amount().amount_minor() > 0) f_.set_amount_minor(w.amount().amount_minor());
      Deal("WON", w.reason(), 1);
      CRM_RETURN_IF_ERROR(Leave(w.stage_id(), false));
      CRM_RETURN_IF_ERROR(Enter(w.stage_id(), "WON"));
    } else if (eventlog::Is<ov1::OpportunityLost>(e_)) {
      CRM_ASSIGN_OR_RETURN(auto l, eventlog::PayloadAs<ov1::OpportunityLost>(e_));
      Deal("LOST", l.reason(), 1);
      CRM_RETURN_IF_ERROR(Leave(l.stage_id(), false));
      CRM_RETURN_IF_ERROR(Enter(l.stage_id(), "LOST"));
    } else if (eventlog::Is<ov1::OpportunityReopened>(e_)) {
      CRM_ASSIGN_OR_RETURN(auto r, eventlog::PayloadAs<ov1::OpportunityReopened>(e_));
      if (!f_.outcome().empty()) Deal(f_.outcome(), r.reason(), -1);
      CRM_RETURN_IF_ERROR(Enter(r.stage_id(), ""));
    } else if (eventlog::Is<ov1::OpportunityCustomerChanged>(e_)) {
      CRM_ASSIGN_OR_RETURN(auto m, eventlog::PayloadAs<ov1::OpportunityCustomerChanged>(e_));
      f_.set_customer_id(m.to_customer_id());
    }
    f_.set_version(e_.aggregate_version());
    b_.Put(key, projection::DeterministicBytes(f_));
    return absl::OkStatus();
  }

 private:
  // A deal_won or deal_lost fact (label: the reason), or with count -1 its cancellation when
  // the opportunity is reopened; the outcome is kept for that.
  void Deal(const std::string& outcome, const std::string& reason, int count) {
    v1::PointFact f = MakeFact(outcome == "WON" ? "deal_won" : "deal_lost", e_.aggregate_id(),
                               projection::OccurredAt(e_), e_);
    f.set_owner_id(f_.owner_id());
    f.set_team_id(f_.team_id());
    f.set_related_id(f_.customer_id());
    f.set_label(reason);
    f.set_count(count);
    f.set_amount_minor(count * f_.amount_minor());
    PutFact(b_, f, e_);
    f_.set_outcome(count > 0 ? outcome : "");
  }

  // A new stay; a won or lost one ends where it starts.
  absl::Status Enter(const std::string& stage, const std::string& outcome) {
    f_.set_visits(f_.visits() + 1);
    const std::string key = absl::StrCat(kVisitPrefix, projection::TimeKey(projection::OccurredAt(e_)),
                                         e_.aggregate_id(), "/", absl::Dec(f_.visits(), absl::kZeroPad4));
    StageVisitFact v;
    v.set_opportunity_id(e_.aggregate_id());
    v.set_pipeline_id(f_.pipeline_id());
    v.set_stage_id(stage);
    *v.mutable_entered_at() = at_;
    *v.mutable_entered_recorded_at() = recorded_;
    v.set_outcome(outcome);
    v.set_amount_minor(f_.amount_minor());
    v.set_currency(f_.currency());
    v.set_owner_id(f_.owner_id());
    v.set_team_id(f_.team_id());
    if (!outcome.empty()) {
      *v.mutable_left_at() = at_;
      *v.mutable_left_recorded_at() = recorded_;
    }
    b_.Put(key, projection::DeterministicBytes(v));
    f_.set_stage_id(stage);
    f_.set_visit_key(key);
    return absl::OkStatus();
  }

  // Ends the current stay, unless it has ended (a won or lost one).
  absl::Status Leave(const std::string& to, bool backwards) {
    if (f_.visit_key().empty()) return absl::OkStatus();
    StageVisitFact v;
    CRM_ASSIGN_OR_RETURN(bool found, projection::ReadRow(db_, b_, f_.visit_key(), &v));
    if (!found || v.has_left_at()) return absl::OkStatus();
    *v.mutable_left_at() = at_;
    *v.mutable_left_recorded_at() = recorded_;
    v.set_left_to(to);
    v.set_left_backwards(backwards);
    b_.Put(f_.visit_key(), projection::DeterministicBytes(v));
    return absl::OkStatus();
  }

  projection::ProjectionDb& db_;
  projection::Batch& b_;
  const common::v1::EventEnvelope& e_;
  const google::protobuf::Timestamp at_, recorded_;
  OpportunityFact f_;
};

}  // namespace

absl::Status ApplyOpportunitiesRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                      projection::Batch& batch) {
  CRM_ASSIGN_OR_RETURN(common::v1::EventEnvelope e, eventlog::DecodeEnvelope(record.value));
  if (eventlog::Is<ov1::PipelinesSet>(e)) {
    CRM_ASSIGN_OR_RETURN(auto set, eventlog::PayloadAs<ov1::PipelinesSet>(e));
    for (const auto& p : set.pipelines()) {
      v1::PipelineFact f = PipelineFactOf(p);
      *f.mutable_recorded_at() = ToProto(projection::RecordedAt(e));
      batch.Put(absl::StrCat(kPipelinePrefix, p.id()), projection::DeterministicBytes(f));
    }
    return absl::OkStatus();
  }
  if (e.aggregate_type() == topics::opportunities::kContract.type) return ApplyContractEvent(db, e, batch);
  if (e.aggregate_type() != topics::opportunities::kOpportunity.type) return absl::OkStatus();
  return Folder(db, batch, e).Run();
}

namespace {

// One opportunity of the cohort, as known as of the query.
struct Path {
  std::vector<StageVisitFact> visits;  // in stay order
  bool cohort = false;
};

bool Known(const google::protobuf::Timestamp& recorded, absl::Time as_of) { return FromProto(recorded) <= as_of; }

// Open stages in the order forward moves imply: Kahn's algorithm, ties by stage id.
std::vector<std::string> InferOrder(const std::map<std::string, Path>& paths, absl::Time as_of) {
  std::set<std::string> nodes;
  std::map<std::string, std::set<std::string>> next;
  for (const auto& [id, p] : paths) {
    for (const auto& v : p.visits) {
      if (!v.outcome().empty()) continue;
      nodes.insert(v.stage_id());
      if (v.has_left_at() && Known(v.left_recorded_at(), as_of) && !v.left_backwards() && !v.left_to().empty() &&
          v.left_to() != v.stage_id()) {
        next[v.stage_id()].insert(v.left_to());
      }
    }
  }
  std::map<std::string, int> indegree;
  for (const auto& n : nodes) indegree[n] = 0;
  for (const auto& [from, tos] : next) {
    for (const auto& to : tos) {
      if (nodes.count(to)) ++indegree[to];
    }
  }
  std::vector<std::string> order;
  std::set<std::string> ready;
  for (const auto& [n, d] : indegree) {
    if (d == 0) ready.insert(n);
  }
  while (order.size() < nodes.size()) {
    if (ready.empty()) {  // a cycle (moves both ways recorded as forward): break it by id
      for (const auto& [n, d] : indegree) {
        if (d > 0 && std::find(order.begin(), order.end(), n) == order.end()) {
          ready.insert(n);
          break;
        }
      }
    }
    const std::string n = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(n);
    indegree[n] = -1;
    for (const auto& to : next[n]) {
      if (nodes.count(to) && indegree[to] > 0 && --indegree[to] == 0) ready.insert(to);
    }
  }
  return order;
}

}  // namespace

absl::StatusOr<FunnelReport> Funnel(rocksdb::DB* db, const FunnelQuery& q) {
  // Every stay entered from the start of the range on, as known as of the query.
  std::map<std::string, Path> paths;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix = kVisitPrefix;
  for (it->Seek(q.from == absl::InfinitePast() ? prefix : absl::StrCat(prefix, projection::TimeKey(q.from)));
       it->Valid() && it->key().starts_with(prefix); it->Next()) {
    StageVisitFact v;
    if (!v.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("undecodable row ", it->key().ToString()));
    }
    if (!Known(v.entered_recorded_at(), q.as_of)) continue;
    if (!q.pipeline_id.empty() && v.pipeline_id() != q.pipeline_id) continue;
    if (!Known(v.left_recorded_at(), q.as_of) || !v.has_left_at()) {
      v.clear_left_at();  // not known to have ended yet
      v.clear_left_to();
    }
    const absl::string_view key(it->key().data(), it->key().size());
    int n = 0;
    (void)absl::SimpleAtoi(key.substr(key.size() - 4), &n);
    Path& p = paths[v.opportunity_id()];
    if (n == 1) {
      const absl::Time created = FromProto(v.entered_at());
      p.cohort = created >= q.from && created < q.to && (q.owner_id.empty() || v.owner_id() == q.owner_id) &&
                 (q.team_id.empty() || v.team_id() == q.team_id);
    }
    p.visits.push_back(std::move(v));
  }
  CRM_RETURN_IF_ERROR(projection::FromRocks(it->status(), "scan the stage visits"));
  for (auto i = paths.begin(); i != paths.end();) i = i->second.cohort ? std::next(i) : paths.erase(i);

  // The stage order and names: the pipeline asked for, or the one every opportunity of the
  // cohort is in; as recorded by as_of, else the service's default when it is "default".
  std::string pipeline_id = q.pipeline_id;
  if (pipeline_id.empty() && !paths.empty()) {
    pipeline_id = paths.begin()->second.visits.front().pipeline_id();
    for (const auto& [id, p] : paths) {
      if (p.visits.front().pipeline_id() != pipeline_id) pipeline_id.clear();
    }
  }
  std::vector<std::string> order, names, kinds;
  v1::PipelineFact pipeline;
  bool known_pipeline = false;
  if (!pipeline_id.empty()) {
    CRM_ASSIGN_OR_RETURN(known_pipeline, projection::ReadRow(db, rocksdb::ReadOptions(),
                                                             absl::StrCat(kPipelinePrefix, pipeline_id), &pipeline));
    known_pipeline = known_pipeline && Known(pipeline.recorded_at(), q.as_of);
    if (!known_pipeline && pipeline_id == topics::opportunities::DefaultPipeline().id()) {
      pipeline = PipelineFactOf(topics::opportunities::DefaultPipeline());
      known_pipeline = true;
    }
  }
  if (known_pipeline) {
    order.assign(pipeline.stage_ids().begin(), pipeline.stage_ids().end());
    names.assign(pipeline.stage_names().begin(), pipeline.stage_names().end());
    kinds.assign(pipeline.stage_kinds().begin(), pipeline.stage_kinds().end());
  } else {
    order = InferOrder(paths, q.as_of);
    kinds.assign(order.size(), "OPEN");
    std::set<std::string> won, lost;
    for (const auto& [id, p] : paths) {
      for (const auto& v : p.visits) {
        if (v.outcome() == "WON") won.insert(v.stage_id());
        if (v.outcome() == "LOST") lost.insert(v.stage_id());
      }
    }
    for (const auto& s : won) order.push_back(s), kinds.push_back("WON");
    for (const auto& s : lost) order.push_back(s), kinds.push_back("LOST");
    // Names from the default pipeline where the ids match; the id otherwise.
    for (const auto& s : order) {
      std::string name = s;
      for (const auto& st : topics::opportunities::DefaultPipeline().stages()) {
        if (st.id() == s) name = st.name();
      }
      names.push_back(name);
    }
  }
  std::map<std::string, size_t> pos;
  for (size_t i = 0; i < order.size(); ++i) pos.emplace(order[i], i);
  const size_t first_terminal = std::find_if(kinds.begin(), kinds.end(), [](const std::string& k) { return k != "OPEN"; }) -
                                kinds.begin();

  FunnelReport r;
  absl::optional<Periods> periods;
  if (q.from != absl::InfinitePast() && q.to != absl::InfiniteFuture()) {
    CRM_ASSIGN_OR_RETURN(periods, Periods::Make(q.from, q.to, q.group_by));
    for (absl::Time s : periods->starts()) r.periods.push_back({.start = s});
  }
  r.stages.resize(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    r.stages[i].stage_id = order[i];
    r.stages[i].stage_name = i < names.size() ? names[i] : order[i];
    r.stages[i].kind = kinds[i];
  }
  std::vector<absl::Duration> stay_sum(order.size());
  money::Totals sums;
  for (const auto& [id, p] : paths) {
    ++r.opportunities;
    const StageVisitFact& last = p.visits.back();
    if (last.outcome() == "WON") ++r.won;
    if (last.outcome() == "LOST") ++r.lost;
    if (periods) {
      FunnelReport::Bucket& b = r.periods[periods->Of(FromProto(p.visits.front().entered_at()))];
      ++b.opportunities;
      if (last.outcome() == "WON") {
        ++b.won;
        sums.Add(&b.won_amount_minor, last.amount_minor(), "periods.won_amount_minor");
      }
      if (last.outcome() == "LOST") ++b.lost;
    }
    // Per stage: reached when a stay at it or after it (won counts as after every open stage).
    std::vector<int64_t> amount(order.size(), -1);
    for (const auto& v : p.visits) {
      auto at = pos.find(v.stage_id());
      if (at == pos.end()) continue;
      const size_t k = at->second;
      if (v.outcome() == "LOST") {
        if (&v == &last && amount[k] < 0) amount[k] = v.amount_minor();
        continue;
      }
      for (size_t s = 0; s <= k; ++s) {
        if (kinds[s] == "LOST" || (kinds[s] == "WON" && s != k)) continue;
        if (amount[s] < 0) amount[s] = v.amount_minor();
      }
      if (v.outcome().empty() && v.has_left_at()) {
        stay_sum[k] += FromProto(v.left_at()) - FromProto(v.entered_at());
        ++r.stages[k].stays_ended;
      }
    }
    for (size_t s = 0; s < order.size(); ++s) {
      if (amount[s] < 0) continue;
      ++r.stages[s].reached;
      sums.Add(&r.stages[s].amount_minor, amount[s], "stages.amount_minor");
    }
  }
  CRM_RETURN_IF_ERROR(sums.status());
  for (size_t s = 0; s < order.size(); ++s) {
    FunnelStage& st = r.stages[s];
    if (st.stays_ended > 0) st.average_stay = stay_sum[s] / st.stays_ended;
    if (kinds[s] != "OPEN" || st.reached == 0) continue;
    const size_t next = s + 1 < first_terminal ? s + 1 : first_terminal;  // the last open stage's next: won
    if (next < order.size() && kinds[next] != "LOST") {
      st.conversion_percent = 100.0 * static_cast<double>(r.stages[next].reached) / static_cast<double>(st.reached);
    }
  }
  r.win_rate_percent = r.won + r.lost == 0 ? 0 : 100.0 * static_cast<double>(r.won) / static_cast<double>(r.won + r.lost);
  return r;
}

}  // namespace crm::analytics
