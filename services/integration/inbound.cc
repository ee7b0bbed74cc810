#include "services/integration/inbound.h"

#include <algorithm>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/types/span.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "libs/common/grpc_status.h"
#include "libs/common/money.h"
#include "libs/common/proto_time.h"
#include "libs/common/request.h"
#include "nlohmann/json.hpp"
#include "services/integration/ledger.h"
#include "services/integration/public_event.h"

namespace crm::integration {
namespace {

using nlohmann::json;

absl::Status Invalid(absl::string_view field, absl::string_view what) { return InvalidFieldError(field, what); }

// The fields of `data` a type takes; any other is refused by name, so a misspelt field is
// never dropped in silence.
absl::Status OnlyFields(const json& data, absl::Span<const absl::string_view> allowed,
                        absl::Span<const absl::string_view> also = {}) {
  for (const auto& [key, value] : data.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end() &&
        std::find(also.begin(), also.end(), key) == also.end()) {
      return Invalid(absl::StrCat("data.", key), "is not a field of this event type");
    }
  }
  return absl::OkStatus();
}

// data.<name> as text: absent or null is "", anything but a string is refused.
absl::StatusOr<std::string> Text(const json& data, absl::string_view name, bool required) {
  auto it = data.find(std::string(name));
  if (it == data.end() || it->is_null()) {
    if (required) return Invalid(absl::StrCat("data.", name), "is required");
    return std::string();
  }
  if (!it->is_string()) return Invalid(absl::StrCat("data.", name), "must be a string");
  std::string s = it->get<std::string>();
  if (required && s.empty()) return Invalid(absl::StrCat("data.", name), "is required");
  return s;
}

// "customers/<uuid>" or a bare UUID -> "customers/<uuid>".
absl::StatusOr<std::string> ResourceName(const json& data, absl::string_view name, absl::string_view collection) {
  absl::StatusOr<std::string> v = Text(data, name, true);
  if (!v.ok()) return v.status();
  const std::string full = absl::StartsWith(*v, absl::StrCat(collection, "/")) ? *v : absl::StrCat(collection, "/", *v);
  absl::StatusOr<std::string> id = ParseName(full, absl::StrCat("data.", name), collection);
  if (!id.ok()) return id.status();
  return full;
}

// RFC 3339, or a day (yyyy-MM-dd, midnight in UTC+8); nullopt when absent and not required.
absl::StatusOr<std::optional<google::protobuf::Timestamp>> When(const json& data, absl::string_view name,
                                                                bool required) {
  absl::StatusOr<std::string> v = Text(data, name, required);
  if (!v.ok()) return v.status();
  if (v->empty()) return std::optional<google::protobuf::Timestamp>();
  std::optional<google::protobuf::Timestamp> t = ParseDayOrTime(*v);
  if (!t) return Invalid(absl::StrCat("data.", name), "must be an RFC 3339 time or a day yyyy-MM-dd");
  return t;
}

// data.amount in `currency` minor units: a decimal string ("12345.67") or a JSON number
// written without an exponent.
absl::StatusOr<int64_t> Amount(const json& data, const std::string& currency) {
  auto it = data.find("amount");
  if (it == data.end() || it->is_null()) return Invalid("data.amount", "is required");
  std::string text;
  if (it->is_string()) {
    text = it->get<std::string>();
  } else if (it->is_number()) {
    text = it->dump();
    if (absl::StrContains(text, "e") || absl::StrContains(text, "E")) return Invalid("data.amount", "must be a plain decimal");
  } else {
    return Invalid("data.amount", "must be a decimal string such as \"12345.67\"");
  }
  absl::StatusOr<int64_t> minor = money::ParseAmount(text, currency);
  if (!minor.ok()) return Invalid("data.amount", minor.status().message());
  if (*minor <= 0) return Invalid("data.amount", "must be positive");
  return *minor;
}

absl::StatusOr<std::string> Currency(const json& data) {
  absl::StatusOr<std::string> c = Text(data, "currency", false);
  if (!c.ok()) return c.status();
  if (c->empty()) return std::string("CNY");
  if (auto d = money::MinorDigits(*c); !d.ok()) return Invalid("data.currency", d.status().message());
  return *c;
}

#define CRM_TEXT(var, data, name, required)                       \
  absl::StatusOr<std::string> var##_or = Text(data, name, required); \
  if (!var##_or.ok()) return var##_or.status();                    \
  const std::string var = *var##_or

absl::Status MapCustomerUpserted(const json& data, const std::string& rid, InboundCommand& cmd) {
  static constexpr std::array<absl::string_view, 9> kProfile = {"display_name", "phone", "email", "address", "industry",
                                                                "region", "notes", "owner_id", "team_id"};
  if (auto s = OnlyFields(data, kProfile, {"customer_id"}); !s.ok()) return s;
  customers::v1::Customer c;
  google::protobuf::FieldMask mask;
  for (absl::string_view f : kProfile) {
    absl::StatusOr<std::string> v = Text(data, f, false);
    if (!v.ok()) return v.status();
    if (!data.contains(std::string(f))) continue;
    const google::protobuf::FieldDescriptor* fd = c.GetDescriptor()->FindFieldByName(std::string(f));
    c.GetReflection()->SetString(&c, fd, *v);
    mask.add_paths(std::string(f));
  }
  if (data.contains("customer_id") && !data["customer_id"].is_null()) {
    absl::StatusOr<std::string> name = ResourceName(data, "customer_id", "customers");
    if (!name.ok()) return name.status();
    if (mask.paths().empty()) return Invalid("data", "names no field to change");
    customers::v1::UpdateCustomerRequest req;
    c.set_name(*name);
    *req.mutable_customer() = std::move(c);
    *req.mutable_update_mask() = std::move(mask);
    req.set_request_id(rid);
    cmd.request = std::move(req);
  } else {
    if (c.display_name().empty()) return Invalid("data.display_name", "is required to create a customer");
    c.set_kind(customers::v1::CUSTOMER_KIND_COMPANY);
    c.set_source("ERP");
    customers::v1::CreateCustomerRequest req;
    *req.mutable_customer() = std::move(c);
    req.set_request_id(rid);
    cmd.request = std::move(req);
  }
  return absl::OkStatus();
}

absl::Status MapOrderCreated(const json& data, const std::string& rid, InboundCommand& cmd) {
  if (auto s = OnlyFields(data, {"customer_id", "order_no", "amount", "currency", "ordered_at", "summary"}); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> customer = ResourceName(data, "customer_id", "customers");
  if (!customer.ok()) return customer.status();
  CRM_TEXT(order_no, data, "order_no", true);
  CRM_TEXT(summary, data, "summary", false);
  absl::StatusOr<std::string> currency = Currency(data);
  if (!currency.ok()) return currency.status();
  absl::StatusOr<int64_t> amount = Amount(data, *currency);
  if (!amount.ok()) return amount.status();
  absl::StatusOr<std::optional<google::protobuf::Timestamp>> at = When(data, "ordered_at", false);
  if (!at.ok()) return at.status();
  customers::v1::CreateFollowUpRequest req;
  req.set_parent(*customer);
  auto* f = req.mutable_follow_up();
  f->set_channel(customers::v1::FOLLOW_UP_CHANNEL_OTHER);
  f->set_summary(absl::StrCat("ERP 订单 ", order_no, ": ", money::FormatAmount(*amount, *money::MinorDigits(*currency)), " ",
                              *currency, summary.empty() ? "" : absl::StrCat("; ", summary)));
  if (at->has_value()) *f->mutable_follow_up_time() = **at;
  req.set_request_id(rid);
  cmd.request = std::move(req);
  return absl::OkStatus();
}

absl::Status MapPaymentReceived(const json& data, const std::string& rid, InboundCommand& cmd) {
  if (auto s = OnlyFields(data, {"contract_id", "amount", "currency", "paid_at", "method", "reference", "note"}); !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> contract = ResourceName(data, "contract_id", "contracts");
  if (!contract.ok()) return contract.status();
  absl::StatusOr<std::string> currency = Currency(data);
  if (!currency.ok()) return currency.status();
  absl::StatusOr<int64_t> amount = Amount(data, *currency);
  if (!amount.ok()) return amount.status();
  absl::StatusOr<std::optional<google::protobuf::Timestamp>> paid = When(data, "paid_at", true);
  if (!paid.ok()) return paid.status();
  CRM_TEXT(method, data, "method", false);
  CRM_TEXT(reference, data, "reference", false);
  CRM_TEXT(note, data, "note", false);
  opportunities::v1::RecordPaymentRequest req;
  req.set_name(*contract);
  auto* p = req.mutable_payment();
  p->set_amount_minor(*amount);
  *p->mutable_paid_at() = **paid;
  p->set_method(method.empty() ? "ERP" : method);
  p->set_reference(reference);
  p->set_note(note);
  req.set_request_id(rid);
  cmd.currency = *currency;
  cmd.request = std::move(req);
  return absl::OkStatus();
}

absl::Status MapApprovalCompleted(const json& data, const std::string& rid, InboundCommand& cmd) {
  if (auto s = OnlyFields(data, {"contract_id", "result", "approver", "comment", "reason"}); !s.ok()) return s;
  absl::StatusOr<std::string> contract = ResourceName(data, "contract_id", "contracts");
  if (!contract.ok()) return contract.status();
  CRM_TEXT(result, data, "result", true);
  CRM_TEXT(approver, data, "approver", false);
  CRM_TEXT(comment, data, "comment", false);
  CRM_TEXT(reason, data, "reason", false);
  const std::string who = approver.empty() ? "OA" : absl::StrCat("OA ", approver);
  if (result == "approved") {
    opportunities::v1::ApproveContractRequest req;
    req.set_name(*contract);
    req.set_comment(absl::StrCat(who, " 审批通过", comment.empty() ? "" : absl::StrCat(": ", comment)));
    req.set_request_id(rid);
    cmd.request = std::move(req);
  } else if (result == "rejected") {
    opportunities::v1::RejectContractRequest req;
    req.set_name(*contract);
    const std::string why = reason.empty() ? comment : reason;
    req.set_reason(absl::StrCat(who, " 审批驳回", why.empty() ? "" : absl::StrCat(": ", why)));
    req.set_request_id(rid);
    cmd.request = std::move(req);
  } else {
    return Invalid("data.result", "must be approved or rejected");
  }
  return absl::OkStatus();
}

#undef CRM_TEXT

// The CloudEvent in `r`: its attributes and data.
struct CloudEvent {
  std::string specversion, id, source, type;
  json data;
};

absl::StatusOr<CloudEvent> ReadCloudEvent(const eventlog::Record& r) {
  std::map<std::string, std::string> headers;
  for (const eventlog::Header& h : r.headers) headers[h.key] = h.value;
  CloudEvent ce;
  if (headers.contains("ce_specversion")) {  // binary mode: attributes in headers
    ce.specversion = headers["ce_specversion"];
    ce.id = headers["ce_id"];
    ce.source = headers["ce_source"];
    ce.type = headers["ce_type"];
    const std::string& ct = headers["content-type"];
    if (!ct.empty() && !absl::StartsWith(ct, "application/json")) {
      return Invalid("content-type", "must be application/json (data is JSON)");
    }
    ce.data = json::parse(r.value, nullptr, false);
    if (ce.data.is_discarded()) return Invalid("data", "is not JSON");
  } else {  // structured mode
    json doc = json::parse(r.value, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return Invalid("value", "is not a CloudEvents JSON object");
    for (auto [field, out] : {std::pair{"specversion", &ce.specversion}, std::pair{"id", &ce.id},
                              std::pair{"source", &ce.source}, std::pair{"type", &ce.type}}) {
      auto it = doc.find(field);
      if (it != doc.end() && !it->is_string()) return Invalid(field, "must be a string");
      if (it != doc.end()) *out = it->get<std::string>();
    }
    if (doc.contains("data_base64")) return Invalid("data_base64", "is not taken: data must be JSON");
    if (auto it = doc.find("datacontenttype"); it != doc.end() &&
        (!it->is_string() || !absl::StartsWith(it->get<std::string>(), "application/json"))) {
      return Invalid("datacontenttype", "must be application/json");
    }
    if (doc.contains("data")) ce.data = doc["data"];
  }
  if (ce.specversion != "1.0") return Invalid("specversion", "must be 1.0");
  if (ce.id.empty()) return Invalid("id", "is required");
  if (ce.id.size() > 100) return Invalid("id", "is longer than 100 characters");
  if (auto s = CheckRequestId(ce.id, "id"); !s.ok()) return s;
  if (ce.source.empty()) return Invalid("source", "is required");
  if (ce.type.empty()) return Invalid("type", "is required");
  if (!ce.data.is_object()) return Invalid("data", "must be a JSON object");
  return ce;
}

// Store rows: "n/<partition>" next inbound offset, "e/<partition>" dead-letter end read
// back, "id/<id>" the ids applied.
std::string NextKey(int32_t p) { return absl::StrCat("n/", p); }
std::string EndKey(int32_t p) { return absl::StrCat("e/", p); }
std::string IdKey(const std::string& id) { return absl::StrCat("id/", id); }

}  // namespace

absl::StatusOr<InboundCommand> ParseInbound(const eventlog::Record& record) {
  absl::StatusOr<CloudEvent> ce = ReadCloudEvent(record);
  if (!ce.ok()) return ce.status();
  InboundCommand cmd{.id = ce->id, .type = ce->type, .source = ce->source};
  const std::string rid = absl::StrCat("inbound:", ce->id);
  absl::Status s;
  if (ce->type == kErpCustomerUpserted) {
    s = MapCustomerUpserted(ce->data, rid, cmd);
  } else if (ce->type == kErpOrderCreated) {
    s = MapOrderCreated(ce->data, rid, cmd);
  } else if (ce->type == kErpPaymentReceived) {
    s = MapPaymentReceived(ce->data, rid, cmd);
  } else if (ce->type == kOaApprovalCompleted) {
    s = MapApprovalCompleted(ce->data, rid, cmd);
  } else {
    s = Invalid("type", absl::StrCat("unknown type ", ce->type, "; known: ", kErpCustomerUpserted, ", ", kErpOrderCreated,
                                     ", ", kErpPaymentReceived, ", ", kOaApprovalCompleted));
  }
  if (!s.ok()) return s;
  return cmd;
}

bool IsPermanent(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::unique_ptr<InboundProcessor>> InboundProcessor::Start(eventlog::Log* log, CommandSink* sink,
                                                                         Options options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("inbound: dir is required");
  if (options.topic.empty()) options.topic = kInboundTopic;
  if (options.dlq_topic.empty()) options.dlq_topic = options.topic + ".dlq";
  std::unique_ptr<InboundProcessor> p(new InboundProcessor(log, sink, std::move(options)));
  absl::StatusOr<std::unique_ptr<rocksdb::DB>> db = OpenStore(p->options_.dir);
  if (!db.ok()) return db.status();
  p->db_ = *std::move(db);
  {
    absl::MutexLock l(&p->mu_);
    for (const auto& [k, v] : LoadNumbers(*p->db_)) {
      int32_t part = 0;
      if (k.size() < 3 || k[1] != '/' || !absl::SimpleAtoi(k.substr(2), &part)) continue;
      if (k[0] == 'n') p->next_[part] = v;
      if (k[0] == 'e') p->dlq_ends_[part] = v;
    }
  }
  // The inbound topic is written by other systems: its partition count is whatever it has.
  if (auto n = log->PartitionCount(p->options_.topic); absl::IsNotFound(n.status())) {
    if (auto s = log->CreateTopic(p->options_.topic, p->options_.partitions); !s.ok()) return s;
  }
  absl::StatusOr<int32_t> n = log->PartitionCount(p->options_.topic);
  if (!n.ok()) return n.status();
  p->partitions_ = *n;
  if (auto s = log->CreateTopic(p->options_.dlq_topic, *n); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<eventlog::Writer>> w = log->OpenWriter(p->options_.dlq_topic);
  if (!w.ok()) return w.status();
  p->dlq_ = *std::move(w);
  if (auto s = p->Recover(); !s.ok()) return s;
  p->thread_ = std::thread([raw = p.get()] { raw->Run(); });
  return p;
}

InboundProcessor::~InboundProcessor() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status InboundProcessor::Recover() {
  std::map<int32_t, int64_t> ends;
  {
    absl::MutexLock l(&mu_);
    ends = dlq_ends_;
  }
  absl::StatusOr<ReadBack> back = ReadBackWritten(*log_, options_.dlq_topic, partitions_, std::move(ends));
  if (!back.ok()) return back.status();
  std::map<std::string, int64_t> rows;
  {
    absl::MutexLock l(&mu_);
    for (const SourcePosition& pos : back->originals) {
      if (pos.topic == options_.topic) next_[pos.partition] = std::max(next_[pos.partition], pos.offset + 1);
    }
    dlq_ends_ = back->ends;
    for (const auto& [p, next] : next_) rows[NextKey(p)] = next;
    for (const auto& [p, end] : dlq_ends_) rows[EndKey(p)] = end;
  }
  return StoreRows(*db_, rows);
}

void InboundProcessor::Run() {
  while (true) {
    absl::Status s = Process();
    absl::MutexLock l(&mu_);
    if (stop_) return;
    status_ = s;
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopped), options_.retry_after)) return;
  }
}

absl::Status InboundProcessor::Process() {
  std::vector<eventlog::Position> from;
  {
    absl::MutexLock l(&mu_);
    for (int32_t p = 0; p < partitions_; ++p) from.push_back({p, next_.contains(p) ? next_[p] : 0});
  }
  absl::StatusOr<std::unique_ptr<eventlog::Subscription>> sub = log_->Subscribe(options_.topic, from);
  if (!sub.ok()) return sub.status();
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (stop_) return absl::OkStatus();
    }
    absl::StatusOr<std::vector<eventlog::Record>> recs = (*sub)->Poll(options_.batch_records, absl::Milliseconds(100));
    if (!recs.ok()) return recs.status();
    // A transient failure halts its partition at the record: the ones after it wait for the
    // next subscription, which starts there again.
    std::set<int32_t> halted;
    absl::Status transient;
    for (const eventlog::Record& r : *recs) {
      if (halted.contains(r.partition)) continue;
      absl::Status s = Handle(r);
      if (!s.ok()) {
        halted.insert(r.partition);
        transient = s;
      }
    }
    if (!transient.ok()) return transient;
    absl::MutexLock l(&mu_);
    if (!status_.ok()) status_ = absl::OkStatus();
  }
}

absl::Status InboundProcessor::Handle(const eventlog::Record& r) {
  absl::StatusOr<InboundCommand> cmd = ParseInbound(r);
  if (!cmd.ok()) {
    if (auto s = DeadLetter(r, cmd.status()); !s.ok()) return s;
    return Done(r, "", "");
  }
  std::string seen;
  if (db_->Get(rocksdb::ReadOptions(), IdKey(cmd->id), &seen).ok()) {
    {
      absl::MutexLock l(&mu_);
      ++stats_.duplicates;
    }
    return Done(r, "", "");
  }
  absl::Status s = sink_->Execute(*cmd);
  if (s.ok()) {
    {
      absl::MutexLock l(&mu_);
      ++stats_.applied;
    }
    return Done(r, cmd->id, absl::StrCat(cmd->type, " ", PositionString(r)));
  }
  if (!IsPermanent(s)) return s;
  if (auto d = DeadLetter(r, s); !d.ok()) return d;
  return Done(r, "", "");
}

absl::Status InboundProcessor::DeadLetter(const eventlog::Record& r, const absl::Status& why) {
  eventlog::Message m;
  m.value = r.value;
  m.headers = r.headers;
  std::string field;
  if (auto br = GetBadRequest(why); br && br->field_violations_size() > 0) field = br->field_violations(0).field();
  m.headers.push_back({"crm_dlq_reason", std::string(why.message())});
  m.headers.push_back({"crm_dlq_code", absl::StatusCodeToString(why.code())});
  if (!field.empty()) m.headers.push_back({"crm_dlq_field", field});
  m.headers.push_back({"crm_dlq_time", absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())});
  m.headers.push_back({kPositionHeader, PositionString(r)});
  absl::StatusOr<eventlog::Appended> a = dlq_->AppendSync(r.key.empty() ? PositionString(r) : r.key, {std::move(m)});
  if (!a.ok()) return a.status();
  absl::MutexLock l(&mu_);
  ++stats_.dead_lettered;
  // Only a letter read back (Recover) moves the stored end: one appended now is covered by
  // the position stored right after it.
  return absl::OkStatus();
}

absl::Status InboundProcessor::Done(const eventlog::Record& r, const std::string& id, const std::string& outcome) {
  std::map<std::string, std::string> texts;
  if (!id.empty()) texts[IdKey(id)] = outcome;
  if (auto s = StoreRows(*db_, {{NextKey(r.partition), r.offset + 1}}, texts); !s.ok()) return s;
  absl::MutexLock l(&mu_);
  next_[r.partition] = r.offset + 1;
  return absl::OkStatus();
}

InboundProcessor::Stats InboundProcessor::stats() const {
  absl::MutexLock l(&mu_);
  return stats_;
}

absl::Status InboundProcessor::status() const {
  absl::MutexLock l(&mu_);
  return status_;
}

absl::Status InboundProcessor::WaitCaughtUp(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  for (int32_t p = 0; p < partitions_; ++p) {
    auto next = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      auto it = next_.find(p);
      return it == next_.end() ? int64_t{0} : it->second;
    };
    if (auto s = WaitPastLastRecord(*log_, options_.topic, p, mu_, next, deadline); !s.ok()) {
      absl::MutexLock l(&mu_);
      return absl::Status(s.code(), absl::StrCat("inbound: ", s.message(), "; last error: ", status_.ToString()));
    }
  }
  return absl::OkStatus();
}

}  // namespace crm::integration
