#ifndef CRM_SERVICES_ANALYTICS_REPORTS_H_
#define CRM_SERVICES_ANALYTICS_REPORTS_H_

// The channels (渠道), team performance (团队业绩), customer value (客户价值, RFM) and churn
// (流失) reports over the facts of customer_facts.h, funnel.h and receivables.h. Every report
// reads only rows recorded by as_of, so it equals the report over the log cut at as_of.
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/analytics/facts.h"

namespace crm::analytics {

struct ReportQuery {
  absl::Time from, to;  // business time, [from, to)
  absl::Time as_of = absl::InfiniteFuture();
  Period group_by = Period::kDay;
  std::string owner_id, team_id;  // empty: any
  std::string currency = "CNY";   // amounts of other currencies are left out
};

// ---- Channels ---------------------------------------------------------------------------

struct ChannelRow {
  std::string channel;  // SourceChannel without its prefix; UNSPECIFIED when not recorded
  int64_t leads = 0;            // created in the range
  int64_t leads_converted = 0;  // of those, converted to a customer by as_of
  int64_t customers = 0;        // customers of the channel created in the range
  int64_t customers_won = 0;    // of those, with a deal won by as_of
  int64_t deals_won = 0;        // deals won in the range by customers of the channel
  int64_t won_amount_minor = 0;
  int64_t cost_minor = 0;  // channel costs of the months starting in the range
  double lead_conversion_percent = 0;  // leads_converted / leads
  double deal_conversion_percent = 0;  // customers_won / customers
  int64_t cost_per_lead_minor = 0;      // cost / leads; 0 without leads
  int64_t cost_per_customer_minor = 0;  // cost / customers; 0 without customers
  bool operator==(const ChannelRow&) const = default;
};

struct ChannelPeriod {
  absl::Time start;
  std::string channel;
  int64_t leads = 0, customers = 0, deals_won = 0;
  bool operator==(const ChannelPeriod&) const = default;
};

struct ChannelsReport {
  std::vector<ChannelRow> channels;    // by channel name
  std::vector<ChannelPeriod> periods;  // non-empty (period, channel) pairs in order
  bool operator==(const ChannelsReport&) const = default;
};

absl::StatusOr<ChannelsReport> Channels(rocksdb::DB* db, const ReportQuery& q);

// ---- Team performance ---------------------------------------------------------------------

// What a rep, a period or the whole scope did.
struct Performance {
  int64_t follow_ups = 0, tasks_done = 0, tasks_overdue = 0;
  int64_t deals_won = 0, deals_lost = 0;
  int64_t won_amount_minor = 0, collected_minor = 0;
  double win_rate_percent = 0;  // won / (won + lost); 0 when neither
  bool operator==(const Performance&) const = default;
};

struct RepRow : Performance {
  std::string owner_id, team_id;
  bool operator==(const RepRow&) const = default;
};

struct TeamPeriod : Performance {
  absl::Time start;
  bool operator==(const TeamPeriod&) const = default;
};

struct TeamReport {
  std::vector<RepRow> reps;  // by owner id
  std::vector<TeamPeriod> periods;
  RepRow total;  // owner and team empty
  bool operator==(const TeamReport&) const = default;
};

absl::StatusOr<TeamReport> Team(rocksdb::DB* db, const ReportQuery& q);

// ---- Customer value -----------------------------------------------------------------------

struct ValueSegment {
  std::string key;  // the region or industry; "" when not recorded
  int64_t customers = 0, paying_customers = 0, collected_minor = 0;
  bool operator==(const ValueSegment&) const = default;
};

struct ValueCustomer {
  std::string customer_id, name, region, industry, owner_id;
  int64_t monetary_minor = 0;  // collected in the range
  int64_t frequency = 0;       // payments in the range
  int64_t recency_days = 0;    // from the last payment standing to the end of the range (or as_of)
  // 1-5 by quintile among the paying customers, 5 best; ties share the higher score.
  int r_score = 0, f_score = 0, m_score = 0;
  std::string segment;  // the eight RFM classes, e.g. 重要价值客户
  bool operator==(const ValueCustomer&) const = default;
};

struct ValueReport {
  int64_t customers = 0, paying_customers = 0, collected_minor = 0;
  std::vector<ValueSegment> by_region, by_industry;  // by collected, descending
  std::vector<ValueCustomer> high_value;             // the top `limit` by monetary
  struct Bucket {
    absl::Time start;
    int64_t collected_minor = 0, payments = 0;
    bool operator==(const Bucket&) const = default;
  };
  std::vector<Bucket> periods;
  bool operator==(const ValueReport&) const = default;
};

// Customers as known as of: not deleted, not merged, created before `to`, owned within the
// owner and team filters; payments of a merged customer count for its survivor.
absl::StatusOr<ValueReport> CustomerValue(rocksdb::DB* db, const ReportQuery& q, int limit);

// ---- Churn --------------------------------------------------------------------------------

struct ChurnReport {
  int64_t churned = 0;
  int64_t new_customers = 0;  // created in the range, for contrast
  struct Reason {
    std::string reason;
    int64_t churned = 0;
    bool operator==(const Reason&) const = default;
  };
  std::vector<Reason> by_reason;  // by count, descending
  struct Bucket {
    absl::Time start;
    int64_t churned = 0, new_customers = 0;
    bool operator==(const Bucket&) const = default;
  };
  std::vector<Bucket> periods;
  bool operator==(const ChurnReport&) const = default;
};

// Customers whose lifecycle became LOST (流失) in the range, by the reason recorded.
absl::StatusOr<ChurnReport> Churn(rocksdb::DB* db, const ReportQuery& q);

}  // namespace crm::analytics

#endif  // CRM_SERVICES_ANALYTICS_REPORTS_H_
