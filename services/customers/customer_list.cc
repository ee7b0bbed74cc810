#include "services/customers/customer_list.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/grpc_status.h"
#include "libs/common/status_macros.h"
#include "libs/projection/index_walk.h"
#include "services/customers/customer_projections.h"

namespace crm::customers {
namespace {

using projection::FromRocks;

constexpr char kCountPrefix[] = "kn/";
constexpr char kOrders[] = "cudn";  // create_time, update_time, display_name, customer_number

char OrderCode(const std::string& field) {
  if (field == "update_time") return 'u';
  if (field == "display_name") return 'd';
  if (field == "customer_number") return 'n';
  return 'c';
}

std::string IndexPrefix(char code) { return std::string{'k', '/', code, '/'}; }

// The position of `s` in order `code`: its sort key, escaped and terminated, then its id.
std::string Position(char code, const CustomerState& s) {
  std::string key;
  switch (code) {
    case 'u': key = rows::TimeKey(FromProto(s.update_time())); break;
    case 'd': key = s.profile().display_name(); break;
    case 'n': key = s.customer_number(); break;
    default: key = rows::TimeKey(FromProto(s.create_time())); break;
  }
  std::string out;
  out.reserve(key.size() + s.id().size() + 2);
  for (char c : key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.append("\0\1", 2);
  out.append(s.id());
  return out;
}

bool Listed(const CustomerState& s) { return s.version() > 0 && !s.purged() && s.merged_into().empty(); }

ListEntry EntryOf(const CustomerState& s) {
  return ListEntry{s.profile().owner_id(), s.profile().team_id(), s.deleted(), s.in_pool()};
}

template <typename Enum>
absl::Status ParseEnum(const std::string& value, bool (*parse)(const std::string&, Enum*), absl::string_view type,
                       int* out) {
  Enum e;
  if (!parse(value, &e)) return InvalidFieldError("filter", absl::StrCat("'", value, "' is not a ", type));
  *out = e;
  return absl::OkStatus();
}

absl::StatusOr<CustomerFilter> ParseFilter(const std::string& text) {
  CustomerFilter f;
  CRM_ASSIGN_OR_RETURN(std::vector<FilterTerm> terms,
                       ParseFilterTerms(text, {"owner_id", "team_id", "lifecycle_status", "cooperation_status",
                                               "source_channel", "industry", "in_pool", "tags"},
                                        {"tags"}));
  for (FilterTerm& t : terms) {
    const std::string& field = t.field;
    std::string& value = t.value;
    if (field == "owner_id") {
      f.owner_id = std::move(value);
    } else if (field == "team_id") {
      f.team_id = std::move(value);
    } else if (field == "tags") {
      f.tag = std::move(value);
    } else if (field == "industry") {
      f.industry = std::move(value);
    } else if (field == "lifecycle_status") {
      CRM_RETURN_IF_ERROR(ParseEnum(value, &v1::LifecycleStatus_Parse, "LifecycleStatus", &f.lifecycle_status));
    } else if (field == "cooperation_status") {
      CRM_RETURN_IF_ERROR(
          ParseEnum(value, &v1::CooperationStatus_Parse, "CooperationStatus", &f.cooperation_status));
    } else if (field == "source_channel") {
      CRM_RETURN_IF_ERROR(ParseEnum(value, &v1::SourceChannel_Parse, "SourceChannel", &f.source_channel));
    } else if (value == "true" || value == "false") {  // in_pool
      f.in_pool = value == "true";
    } else {
      return InvalidFieldError("filter", "in_pool must be true or false");
    }
  }
  return f;
}

// Whether `caller` sees the entry and the query's entry terms admit it.
bool Admits(const Caller& caller, const ListQuery& q, const ListEntry& e) {
  const CustomerFilter& f = q.filter;
  if (e.deleted && !q.show_deleted) return false;
  if (!f.owner_id.empty() && e.owner != f.owner_id) return false;
  if (!f.team_id.empty() && e.team != f.team_id) return false;
  if (f.in_pool >= 0 && e.in_pool != (f.in_pool == 1)) return false;
  return SeesRecord(caller, e.owner, e.team, e.in_pool);
}

// Whether the customer passes the terms an entry does not answer.
bool MatchesState(const CustomerFilter& f, const CustomerState& s) {
  const auto& p = s.profile();
  if (!f.industry.empty() && p.industry() != f.industry) return false;
  if (f.lifecycle_status >= 0 && p.lifecycle_status() != f.lifecycle_status) return false;
  if (f.cooperation_status >= 0 && p.cooperation_status() != f.cooperation_status) return false;
  if (f.source_channel >= 0 && p.source_channel() != f.source_channel) return false;
  if (!f.tag.empty() && std::find(p.tags().begin(), p.tags().end(), f.tag) == p.tags().end() &&
      std::none_of(s.rule_tags().begin(), s.rule_tags().end(),
                   [&](const v1::RuleTag& t) { return t.tag() == f.tag; })) {
    return false;
  }
  return true;
}

// Reads the customers on owner index `owner` ("" is the pool) that pass the query, sorts
// them and visits those after `after`.
absl::StatusOr<WalkEnd> WalkNarrow(
    rocksdb::DB* db, const rocksdb::ReadOptions& ro, const Caller& caller, const ListQuery& q, const std::string& owner,
    absl::string_view after, absl::FunctionRef<absl::StatusOr<bool>(CustomerState&&, absl::string_view)> visit) {
  const char code = OrderCode(q.order.field);
  std::vector<std::pair<std::string, CustomerState>> rows;
  const std::string prefix = absl::StrCat("o/", owner, "/");
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    const std::string id = it->key().ToString().substr(prefix.size());
    CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db, ro, id));
    if (!s.has_value() || !Listed(*s) || !Admits(caller, q, EntryOf(*s)) || !MatchesState(q.filter, *s)) continue;
    std::string pos = Position(code, *s);
    const bool past = after.empty() || (q.order.desc ? pos < after : pos > after);
    if (past) rows.emplace_back(std::move(pos), std::move(*s));
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read the owner index"));
  std::sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
    return q.order.desc ? a.first > b.first : a.first < b.first;
  });
  WalkEnd end;
  for (auto& [pos, state] : rows) {
    end.last_position = pos;
    CRM_ASSIGN_OR_RETURN(bool more, visit(std::move(state), pos));
    if (!more) return end;
  }
  end.reached_end = true;
  return end;
}

}  // namespace

absl::Status AddListCount(projection::ProjectionDb& db, projection::Batch& b, absl::string_view prefix,
                          const ListEntry& e, int64_t delta) {
  const std::string key = absl::StrCat(prefix, e.Encode());
  std::string cur;
  int64_t n = 0;
  absl::Status s = db.Get(b, key, &cur);
  if (s.ok()) {
    if (!absl::SimpleAtoi(cur, &n)) return absl::DataLossError("undecodable count row");
  } else if (!absl::IsNotFound(s)) {
    return s;
  }
  n += delta;
  if (n < 0) return absl::DataLossError("a count row went below zero");
  if (n == 0) {
    b.Delete(key);
  } else {
    b.Put(key, std::to_string(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<ListCounts> SumListCounts(rocksdb::DB* db, const rocksdb::ReadOptions& ro, absl::string_view prefix,
                                         absl::FunctionRef<bool(const ListEntry&)> admit) {
  ListCounts sums;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  const rocksdb::Slice start(prefix.data(), prefix.size());
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    ListEntry e;
    int64_t n = 0;
    const rocksdb::Slice k = it->key();
    if (!ListEntry::Decode(absl::string_view(k.data() + prefix.size(), k.size() - prefix.size()), &e) ||
        !absl::SimpleAtoi(absl::string_view(it->value().data(), it->value().size()), &n)) {
      return absl::DataLossError("undecodable count row");
    }
    sums.all += n;
    if (admit(e)) sums.admitted += n;
  }
  CRM_RETURN_IF_ERROR(FromRocks(it->status(), "read counts"));
  return sums;
}

std::string ListEntry::Encode() const {
  // A flags byte, the owner's length as a LEB128 varint, the owner, then the team.
  std::string out(1, static_cast<char>((deleted ? 1 : 0) | (in_pool ? 2 : 0)));
  for (size_t n = owner.size();; n >>= 7) {
    out.push_back(static_cast<char>((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)));
    if (n < 0x80) break;
  }
  absl::StrAppend(&out, owner, team);
  return out;
}

bool ListEntry::Decode(absl::string_view raw, ListEntry* out) {
  if (raw.empty() || (static_cast<unsigned char>(raw[0]) & ~3u) != 0) return false;
  out->deleted = raw[0] & 1;
  out->in_pool = raw[0] & 2;
  size_t n = 0, i = 1;
  for (int shift = 0;; shift += 7) {
    if (i >= raw.size() || shift > 28) return false;
    const unsigned char c = static_cast<unsigned char>(raw[i++]);
    n |= static_cast<size_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) break;
  }
  if (n > raw.size() - i) return false;
  out->owner = std::string(raw.substr(i, n));
  out->team = std::string(raw.substr(i + n));
  return true;
}

bool CustomerFilter::EntryTermsOnly() const {
  return tag.empty() && industry.empty() && lifecycle_status < 0 && cooperation_status < 0 && source_channel < 0;
}

absl::StatusOr<ListQuery> ParseListQuery(const std::string& filter, const std::string& order_by, bool show_deleted) {
  ListQuery q;
  CRM_ASSIGN_OR_RETURN(q.filter, ParseFilter(filter));
  CRM_ASSIGN_OR_RETURN(q.order, ParseOrderBy(order_by, {"create_time", "update_time", "display_name", "customer_number"},
                                             "create_time"));
  q.show_deleted = show_deleted;
  return q;
}

absl::Status UpdateListRows(projection::ProjectionDb& db, projection::Batch& b, const CustomerState& before,
                            const CustomerState& after) {
  const bool was = Listed(before);
  const bool is = Listed(after);
  const ListEntry old_entry = was ? EntryOf(before) : ListEntry{};
  const ListEntry new_entry = is ? EntryOf(after) : ListEntry{};
  const bool same_entry = was && is && old_entry == new_entry;
  const std::string new_value = is ? new_entry.Encode() : "";
  for (const char code : absl::string_view(kOrders)) {
    const std::string old_key = was ? IndexPrefix(code) + Position(code, before) : "";
    const std::string new_key = is ? IndexPrefix(code) + Position(code, after) : "";
    if (was && old_key != new_key) b.Delete(old_key);
    if (is && (old_key != new_key || !same_entry)) b.Put(new_key, new_value);
  }
  if (same_entry) return absl::OkStatus();
  if (was) CRM_RETURN_IF_ERROR(AddListCount(db, b, kCountPrefix, old_entry, -1));
  if (is) CRM_RETURN_IF_ERROR(AddListCount(db, b, kCountPrefix, new_entry, +1));
  return absl::OkStatus();
}

ListEntry LeadEntry(const LeadState& s) {
  const bool pool = s.owner_id().empty() &&
                    (s.status() == v1::LEAD_STATUS_OPEN || s.status() == v1::LEAD_STATUS_QUALIFIED);
  return ListEntry{s.owner_id(), s.team_id(), false, pool};
}

absl::Status UpdateLeadCounts(projection::ProjectionDb& db, projection::Batch& b, const LeadState& before,
                              const LeadState& after) {
  const bool was = before.version() > 0;
  const ListEntry old_entry = was ? LeadEntry(before) : ListEntry{};
  const ListEntry new_entry = LeadEntry(after);
  if (was && old_entry == new_entry) return absl::OkStatus();
  if (was) CRM_RETURN_IF_ERROR(AddListCount(db, b, kLeadCountPrefix, old_entry, -1));
  return AddListCount(db, b, kLeadCountPrefix, new_entry, +1);
}

absl::StatusOr<WalkEnd> WalkCustomers(
    rocksdb::DB* db, const rocksdb::ReadOptions& ro, const Caller& caller, const ListQuery& q, absl::string_view after,
    int64_t wanted, int64_t budget, absl::FunctionRef<absl::StatusOr<bool>(CustomerState&&, absl::string_view)> visit) {
  const CustomerFilter& f = q.filter;
  if (!f.owner_id.empty() || f.in_pool == 1) {
    // One owner's customers (the pool's owner is ""). Reading and sorting them costs about
    // ten index rows each; walking the index, the rows until `wanted` of theirs come by.
    const std::string owner = f.in_pool == 1 ? "" : f.owner_id;
    CRM_ASSIGN_OR_RETURN(ListCounts counts,
                         SumListCounts(db, ro, kCountPrefix, [&](const ListEntry& e) { return e.owner == owner; }));
    const int64_t n = counts.admitted, total = counts.all;
    const double walk_rows = wanted >= n ? static_cast<double>(total)
                                         : static_cast<double>(wanted + 1) * static_cast<double>(total) / n;
    if (n <= kNarrowLimit && 10.0 * static_cast<double>(n) <= walk_rows) {
      return WalkNarrow(db, ro, caller, q, owner, after, visit);
    }
  }
  const char code = OrderCode(q.order.field);
  projection::IndexWalk walk{.prefixes = {IndexPrefix(code)}, .descending = q.order.desc,
                             .after = std::string(after), .budget = budget};
  return projection::WalkIndexes(
      db, ro, walk, [&](absl::string_view pos, absl::string_view value) -> absl::StatusOr<bool> {
        ListEntry e;
        if (!ListEntry::Decode(value, &e)) return absl::DataLossError("undecodable customer index row");
        if (!Admits(caller, q, e)) return true;
        const size_t sep = pos.rfind(absl::string_view("\0\1", 2));
        if (sep == absl::string_view::npos) return absl::DataLossError("customer index row without an id");
        CRM_ASSIGN_OR_RETURN(auto s, ReadCustomer(db, ro, pos.substr(sep + 2)));
        if (!s.has_value()) return absl::DataLossError("customer index row without its customer");
        if (!MatchesState(f, *s)) return true;
        return visit(std::move(*s), pos);
      });
}

absl::StatusOr<absl::optional<int64_t>> CountCustomers(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                                       const Caller& caller, const ListQuery& q) {
  if (!q.filter.EntryTermsOnly()) return absl::optional<int64_t>();
  CRM_ASSIGN_OR_RETURN(ListCounts counts,
                       SumListCounts(db, ro, kCountPrefix, [&](const ListEntry& e) { return Admits(caller, q, e); }));
  return absl::optional<int64_t>(counts.admitted);
}

}  // namespace crm::customers
