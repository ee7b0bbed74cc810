#include "services/analytics/reports.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "crm/analytics/v1/analytics_rows.pb.h"
#include "libs/common/money.h"
#include "libs/common/status_macros.h"
#include "services/analytics/customer_facts.h"

namespace crm::analytics {
namespace {

FactFilter Filter(const ReportQuery& q) {
  return {.from = q.from, .to = q.to, .as_of = q.as_of, .owner_id = q.owner_id, .team_id = q.team_id};
}

// Everything recorded by as_of, at any business time, of anyone.
FactFilter Ever(const ReportQuery& q) { return {.as_of = q.as_of}; }

double Percent(int64_t part, int64_t whole) {
  return whole == 0 ? 0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// The customers as known as of.
absl::StatusOr<std::map<std::string, v1::CustomerDim>> Customers(rocksdb::DB* db, absl::Time as_of) {
  std::map<std::string, v1::CustomerDim> out;
  CRM_RETURN_IF_ERROR(ScanVersions<v1::CustomerDim>(
      db, kCustomerDimPrefix, as_of, [&](const std::string& id, const v1::CustomerDim& d) { out.emplace(id, d); }));
  return out;
}

// Follows merges to the surviving customer (at most a few hops; a cycle stops).
const std::string& Survivor(const std::map<std::string, v1::CustomerDim>& dims, const std::string& id) {
  const std::string* at = &id;
  for (int hops = 0; hops < 8; ++hops) {
    auto it = dims.find(*at);
    if (it == dims.end() || it->second.merged_into().empty()) break;
    at = &it->second.merged_into();
  }
  return *at;
}

}  // namespace

absl::StatusOr<ChannelsReport> Channels(rocksdb::DB* db, const ReportQuery& q) {
  CRM_ASSIGN_OR_RETURN(Periods periods, Periods::Make(q.from, q.to, q.group_by));
  money::Totals sums;
  std::map<std::string, ChannelRow> rows;
  std::map<std::pair<size_t, std::string>, ChannelPeriod> by_period;
  auto row = [&](const std::string& channel) -> ChannelRow& {
    ChannelRow& r = rows[channel.empty() ? "UNSPECIFIED" : channel];
    if (r.channel.empty()) r.channel = channel.empty() ? "UNSPECIFIED" : channel;
    return r;
  };
  auto period = [&](const v1::PointFact& f, const std::string& channel) -> ChannelPeriod& {
    const size_t i = periods.Of(FromProto(f.occurred_at()));
    ChannelPeriod& p = by_period[{i, channel.empty() ? "UNSPECIFIED" : channel}];
    p.start = periods.starts()[i];
    p.channel = channel.empty() ? "UNSPECIFIED" : channel;
    return p;
  };
  // Leads of the range and which of them were converted by as_of.
  std::set<std::string> converted;
  CRM_RETURN_IF_ERROR(
      ScanFacts(db, "lead_converted", Ever(q), [&](const v1::PointFact& f) { converted.insert(f.subject_id()); }));
  CRM_RETURN_IF_ERROR(ScanFacts(db, "lead_created", Filter(q), [&](const v1::PointFact& f) {
    ChannelRow& r = row(f.label());
    ++r.leads;
    r.leads_converted += converted.count(f.subject_id());
    ++period(f, f.label()).leads;
  }));
  // Customers of the range and which of them had won a deal by as_of.
  std::map<std::string, int64_t> wins;  // customer -> deals won, net of reopenings
  CRM_RETURN_IF_ERROR(
      ScanFacts(db, "deal_won", Ever(q), [&](const v1::PointFact& f) { wins[f.related_id()] += f.count(); }));
  CRM_RETURN_IF_ERROR(ScanFacts(db, "customer_created", Filter(q), [&](const v1::PointFact& f) {
    ChannelRow& r = row(f.label());
    ++r.customers;
    auto w = wins.find(f.subject_id());
    if (w != wins.end() && w->second > 0) ++r.customers_won;
    ++period(f, f.label()).customers;
  }));
  // Deals won in the range, by their customer's channel as known as of.
  CRM_ASSIGN_OR_RETURN(auto dims, Customers(db, q.as_of));
  CRM_RETURN_IF_ERROR(ScanFacts(db, "deal_won", Filter(q), [&](const v1::PointFact& f) {
    auto d = dims.find(f.related_id());
    const std::string channel = d == dims.end() ? "" : d->second.source_channel();
    ChannelRow& r = row(channel);
    r.deals_won += f.count();
    sums.Add(&r.won_amount_minor, f.amount_minor(), "channels.won_amount_minor");
    period(f, channel).deals_won += f.count();
  }));
  // Costs of the months that start in the range.
  const absl::TimeZone zone = ReportZone();
  CRM_RETURN_IF_ERROR(ScanVersions<v1::ChannelCostFact>(
      db, kChannelCostPrefix, q.as_of, [&](const std::string&, const v1::ChannelCostFact& c) {
        absl::CivilMonth month;
        if (c.currency() != q.currency || !absl::ParseCivilTime(c.month(), &month)) return;
        const absl::Time start = absl::FromCivil(month, zone);
        if (start < q.from || start >= q.to || c.amount_minor() == 0) return;
        sums.Add(&row(c.source_channel()).cost_minor, c.amount_minor(), "channels.cost_minor");
      }));
  CRM_RETURN_IF_ERROR(sums.status());
  ChannelsReport out;
  for (auto& [name, r] : rows) {
    r.lead_conversion_percent = Percent(r.leads_converted, r.leads);
    r.deal_conversion_percent = Percent(r.customers_won, r.customers);
    r.cost_per_lead_minor = r.leads == 0 ? 0 : r.cost_minor / r.leads;
    r.cost_per_customer_minor = r.customers == 0 ? 0 : r.cost_minor / r.customers;
    out.channels.push_back(r);
  }
  for (auto& [key, p] : by_period) out.periods.push_back(p);
  return out;
}

absl::StatusOr<TeamReport> Team(rocksdb::DB* db, const ReportQuery& q) {
  CRM_ASSIGN_OR_RETURN(Periods periods, Periods::Make(q.from, q.to, q.group_by));
  TeamReport out;
  out.periods.resize(periods.size());
  for (size_t i = 0; i < periods.size(); ++i) out.periods[i].start = periods.starts()[i];
  std::map<std::string, RepRow> reps;
  money::Totals sums;
  // Each fact counts for its rep, its period and the total.
  auto add = [&](absl::string_view kind, auto fn) {
    return ScanFacts(db, kind, Filter(q), [&](const v1::PointFact& f) {
      RepRow& r = reps[f.owner_id()];
      r.owner_id = f.owner_id();
      if (!f.team_id().empty()) r.team_id = f.team_id();
      for (Performance* p : {static_cast<Performance*>(&r), static_cast<Performance*>(&out.total),
                             static_cast<Performance*>(&out.periods[periods.Of(FromProto(f.occurred_at()))])}) {
        fn(f, *p);
      }
    });
  };
  CRM_RETURN_IF_ERROR(add("follow_up", [](const v1::PointFact&, Performance& p) { ++p.follow_ups; }));
  CRM_RETURN_IF_ERROR(add("task_done", [](const v1::PointFact& f, Performance& p) { p.tasks_done += f.count(); }));
  CRM_RETURN_IF_ERROR(add("task_overdue", [](const v1::PointFact& f, Performance& p) { p.tasks_overdue += f.count(); }));
  CRM_RETURN_IF_ERROR(add("deal_won", [&](const v1::PointFact& f, Performance& p) {
    p.deals_won += f.count();
    sums.Add(&p.won_amount_minor, f.amount_minor(), "won_amount_minor");
  }));
  CRM_RETURN_IF_ERROR(add("deal_lost", [](const v1::PointFact& f, Performance& p) { p.deals_lost += f.count(); }));
  CRM_RETURN_IF_ERROR(add("payment", [&](const v1::PointFact& f, Performance& p) {
    if (f.label() == q.currency) sums.Add(&p.collected_minor, f.amount_minor(), "collected_minor");
  }));
  CRM_RETURN_IF_ERROR(sums.status());
  auto rate = [](Performance& p) { p.win_rate_percent = Percent(p.deals_won, p.deals_won + p.deals_lost); };
  for (auto& [id, r] : reps) {
    rate(r);
    out.reps.push_back(r);
  }
  for (auto& p : out.periods) rate(p);
  rate(out.total);
  return out;
}

namespace {

// Scores 1-5 by quintile of `values` (smaller is better when `better_low`): ceil(5 * rank / n)
// with rank 1..n from worst to best, a value taking the rank of its last equal so ties share
// the higher score (a single value scores 5).
std::vector<int> Quintiles(const std::vector<int64_t>& values, bool better_low) {
  std::vector<size_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return better_low ? values[a] > values[b] : values[a] < values[b];
  });
  std::vector<int> score(values.size());
  const size_t n = order.size();
  for (size_t k = 0; k < n;) {
    size_t last = k;
    while (last + 1 < n && values[order[last + 1]] == values[order[k]]) ++last;
    const int s = static_cast<int>((5 * (last + 1) + n - 1) / n);
    for (; k <= last; ++k) score[order[k]] = s;
  }
  return score;
}

std::string Segment(bool r, bool f, bool m) {
  if (m) return r ? (f ? "重要价值客户" : "重要发展客户") : (f ? "重要保持客户" : "重要挽留客户");
  return r ? (f ? "一般价值客户" : "一般发展客户") : (f ? "一般保持客户" : "一般挽留客户");
}

}  // namespace

absl::StatusOr<ValueReport> CustomerValue(rocksdb::DB* db, const ReportQuery& q, int limit) {
  CRM_ASSIGN_OR_RETURN(Periods periods, Periods::Make(q.from, q.to, q.group_by));
  ValueReport out;
  for (absl::Time s : periods.starts()) out.periods.push_back({.start = s});
  CRM_ASSIGN_OR_RETURN(auto dims, Customers(db, q.as_of));
  auto counted = [&](const v1::CustomerDim& d) {
    return !d.deleted() && d.merged_into().empty() && FromProto(d.created_at()) < q.to &&
           (q.owner_id.empty() || d.owner_id() == q.owner_id) && (q.team_id.empty() || d.team_id() == q.team_id);
  };
  struct Paid {
    int64_t monetary = 0, frequency = 0;
    // Per payment, the paid_at of its facts standing: a cancelling fact removes the one at
    // its time.
    std::map<std::string, std::multiset<absl::Time>> standing;
  };
  std::map<std::string, Paid> paid;
  money::Totals sums;
  FactFilter f = Filter(q);
  f.owner_id.clear();  // the customer's owner decides, below
  f.team_id.clear();
  CRM_RETURN_IF_ERROR(ScanFacts(db, "payment", f, [&](const v1::PointFact& p) {
    if (p.label() != q.currency) return;
    const std::string& id = Survivor(dims, p.related_id());
    auto d = dims.find(id);
    if (d == dims.end() || !counted(d->second)) return;
    Paid& x = paid[id];
    sums.Add(&x.monetary, p.amount_minor(), "high_value.monetary_minor");
    x.frequency += p.count();
    std::multiset<absl::Time>& at = x.standing[p.subject_id()];
    if (p.count() > 0) {
      at.insert(FromProto(p.occurred_at()));
    } else if (auto it = at.find(FromProto(p.occurred_at())); it != at.end()) {
      at.erase(it);
    }
    auto& bucket = out.periods[periods.Of(FromProto(p.occurred_at()))];
    sums.Add(&bucket.collected_minor, p.amount_minor(), "periods.collected_minor");
    bucket.payments += p.count();
  }));
  std::map<std::string, ValueSegment> regions, industries;
  for (const auto& [id, d] : dims) {
    if (!counted(d)) continue;
    ++out.customers;
    ValueSegment& r = regions[d.region()];
    ValueSegment& i = industries[d.industry()];
    r.key = d.region();
    i.key = d.industry();
    ++r.customers;
    ++i.customers;
    auto p = paid.find(id);
    if (p == paid.end() || p->second.monetary <= 0) continue;
    ++out.paying_customers;
    sums.Add(&out.collected_minor, p->second.monetary, "collected_minor");
    for (ValueSegment* s : {&r, &i}) {
      ++s->paying_customers;
      sums.Add(&s->collected_minor, p->second.monetary, s == &r ? "by_region.collected_minor" : "by_industry.collected_minor");
    }
  }
  CRM_RETURN_IF_ERROR(sums.status());
  auto sorted = [](std::map<std::string, ValueSegment>& m) {
    std::vector<ValueSegment> v;
    for (auto& [k, s] : m) v.push_back(s);
    std::stable_sort(v.begin(), v.end(),
                     [](const ValueSegment& a, const ValueSegment& b) { return a.collected_minor > b.collected_minor; });
    return v;
  };
  out.by_region = sorted(regions);
  out.by_industry = sorted(industries);

  // RFM over the paying customers: recency to the end of the range, or as_of when earlier.
  const absl::Time end = std::min(q.to, q.as_of);
  std::vector<ValueCustomer> list;
  std::vector<int64_t> r, fr, m;
  for (const auto& [id, p] : paid) {
    if (p.monetary <= 0) continue;
    const v1::CustomerDim& d = dims.at(id);
    absl::Time last = absl::InfinitePast();
    for (const auto& [payment, at] : p.standing) {
      if (!at.empty()) last = std::max(last, *at.rbegin());
    }
    ValueCustomer c{.customer_id = id, .name = d.name(), .region = d.region(), .industry = d.industry(),
                    .owner_id = d.owner_id(), .monetary_minor = p.monetary, .frequency = p.frequency,
                    .recency_days = std::max<int64_t>(0, absl::ToInt64Hours(end - last) / 24)};
    r.push_back(c.recency_days);
    fr.push_back(c.frequency);
    m.push_back(c.monetary_minor);
    list.push_back(std::move(c));
  }
  const std::vector<int> rs = Quintiles(r, true), fs = Quintiles(fr, false), ms = Quintiles(m, false);
  auto mean = [](const std::vector<int64_t>& v) {
    double sum = 0;
    for (int64_t x : v) sum += static_cast<double>(x);
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
  };
  const double mr = mean(r), mf = mean(fr), mm = mean(m);
  for (size_t i = 0; i < list.size(); ++i) {
    ValueCustomer& c = list[i];
    c.r_score = rs[i];
    c.f_score = fs[i];
    c.m_score = ms[i];
    c.segment = Segment(static_cast<double>(c.recency_days) <= mr, static_cast<double>(c.frequency) >= mf,
                        static_cast<double>(c.monetary_minor) >= mm);
  }
  std::sort(list.begin(), list.end(), [](const ValueCustomer& a, const ValueCustomer& b) {
    return a.monetary_minor != b.monetary_minor ? a.monetary_minor > b.monetary_minor : a.customer_id < b.customer_id;
  });
  if (list.size() > static_cast<size_t>(limit)) list.resize(static_cast<size_t>(limit));
  out.high_value = std::move(list);
  return out;
}

absl::StatusOr<ChurnReport> Churn(rocksdb::DB* db, const ReportQuery& q) {
  CRM_ASSIGN_OR_RETURN(Periods periods, Periods::Make(q.from, q.to, q.group_by));
  ChurnReport out;
  for (absl::Time s : periods.starts()) out.periods.push_back({.start = s});
  std::map<std::string, int64_t> reasons;
  CRM_RETURN_IF_ERROR(ScanFacts(db, "customer_churned", Filter(q), [&](const v1::PointFact& f) {
    ++out.churned;
    ++reasons[f.label()];
    ++out.periods[periods.Of(FromProto(f.occurred_at()))].churned;
  }));
  CRM_RETURN_IF_ERROR(ScanFacts(db, "customer_created", Filter(q), [&](const v1::PointFact& f) {
    ++out.new_customers;
    ++out.periods[periods.Of(FromProto(f.occurred_at()))].new_customers;
  }));
  for (const auto& [reason, n] : reasons) out.by_reason.push_back({reason, n});
  std::stable_sort(out.by_reason.begin(), out.by_reason.end(),
                   [](const ChurnReport::Reason& a, const ChurnReport::Reason& b) { return a.churned > b.churned; });
  return out;
}

}  // namespace crm::analytics
