// CustomerEngine's bulk import (批量导入) and export (批量导出).
#include <algorithm>
#include <limits>
#include <set>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "libs/common/grpc_status.h"
#include "libs/common/ids.h"
#include "libs/common/status_macros.h"
#include "services/customers/customer_columns.h"
#include "services/customers/customer_engine.h"
#include "services/customers/customer_list.h"
#include "services/customers/customer_projections.h"
#include "services/customers/engine_util.h"

namespace crm::customers {

using namespace internal;  // NOLINT: the engine's own helpers

namespace {

constexpr int kMaxColumns = 200;
constexpr int kMaxRowsPerMessage = 1000;

bool ValidImportId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; });
}

// Whether profile field `path` holds no value (empty text, unset enum, no tags).
bool IsEmpty(const CustomerProfile& p, const std::string& path) {
  const auto* fd = p.GetDescriptor()->FindFieldByName(path);
  if (fd == nullptr) return false;
  return !FieldDiffers(p, CustomerProfile::default_instance(), fd);
}

// The contact a row carries, unless the customer has one with its phone (or, without a
// phone, its name) already.
bool HasContact(const CustomerState& s, const Contact& c) {
  std::string phone;
  if (!c.phone().empty()) {
    std::string unused;
    NormalizedKeys(c.phone(), "", &phone, &unused);
  }
  for (const auto& k : s.contacts()) {
    if (!phone.empty() ? k.normalized_phone() == phone : k.name() == c.name()) return true;
  }
  return false;
}

CustomerProfile ProfileOf(const v1::Customer& c) {
  CustomerProfile p;
  CopySameNamed(c, &p);
  return p;
}

// The request id of row `row` of the import `import_id` by `user`. Per user, so that one
// user's import never skips (and shows) another user's rows that carry the same import_id.
// The spaces keep it apart from every client's request_id (CheckRequestId refuses them), and
// the user id's length from any other user's, whatever characters the user id holds.
std::string ImportRequestId(absl::string_view user, absl::string_view import_id, int64_t row) {
  return absl::StrCat("import ", user.size(), ":", user, " ", import_id, " ", row);
}

}  // namespace

struct CustomerEngine::Import::Row {
  int64_t row_number = 0;
  v1::Customer customer;  // the mapped profile fields
  Contact contact;
  bool has_contact = false;
  std::vector<std::string> paths;  // profile fields with a non-empty cell
  std::string explicit_id;         // from a `name` column
  std::string phone, email, company;  // dedupe keys (normalised)
  v1::ImportRowResult result;
  bool done = false;  // result is final
};

absl::StatusOr<std::unique_ptr<CustomerEngine::Import>> CustomerEngine::StartImport(const Caller& caller,
                                                                                   const v1::ImportOptions& o) {
  std::unique_ptr<Import> imp(new Import(this, caller));
  if (o.columns().empty()) return InvalidFieldError("options.columns", "is required (the file's header)");
  if (o.columns_size() > kMaxColumns) {
    return InvalidFieldError("options.columns", absl::StrCat("has more than ", kMaxColumns, " columns"));
  }
  if (!v1::DedupePolicy_IsValid(o.dedupe_policy())) {
    return InvalidFieldError("options.dedupe_policy", "is not a DedupePolicy");
  }
  imp->policy_ = o.dedupe_policy() == v1::DEDUPE_POLICY_UNSPECIFIED ? v1::DEDUPE_POLICY_SKIP : o.dedupe_policy();
  imp->dry_run_ = o.dry_run();
  if (!o.import_id().empty() && !ValidImportId(o.import_id())) {
    return InvalidFieldError("options.import_id", "must be 1-64 of A-Z a-z 0-9 . _ -");
  }
  imp->import_id_ = o.import_id().empty() ? NewUuidV7(options_.clock->Now()) : o.import_id();
  std::set<std::string> names;
  for (const auto& [column, field] : o.mapping()) {
    if (std::find(o.columns().begin(), o.columns().end(), column) == o.columns().end()) {
      return InvalidFieldError(absl::StrCat("options.mapping[", column, "]"), "is not one of options.columns");
    }
    const ColumnSpec* spec = FindColumn(field);
    if (!field.empty() && (spec == nullptr || !spec->importable)) {
      return InvalidFieldError(absl::StrCat("options.mapping[", column, "]"),
                               absl::StrCat("'", field, "' is not a field an import can set"));
    }
  }
  for (int i = 0; i < o.columns_size(); ++i) {
    const std::string& column = o.columns(i);
    if (!names.insert(column).second) {
      return InvalidFieldError(absl::StrCat("options.columns[", i, "]"), absl::StrCat("'", column, "' appears twice"));
    }
    std::string field;
    if (auto it = o.mapping().find(column); it != o.mapping().end()) {
      field = it->second;
    } else if (const ColumnSpec* spec = ColumnForHeader(column); spec != nullptr && spec->importable) {
      field = spec->field;
    }
    if (!field.empty()) {
      if (auto [it, fresh] = imp->column_of_.emplace(field, column); !fresh) {
        return InvalidFieldError("options.mapping", absl::StrCat("columns '", it->second, "' and '", column,
                                                                 "' both map to ", field, "; map one of them to \"\""));
      }
      (*imp->header_.mutable_mapping())[column] = field;
    } else {
      imp->header_.add_ignored_columns(column);
    }
    imp->fields_.push_back(field);
  }
  if (!imp->column_of_.contains("display_name") && !imp->column_of_.contains("name")) {
    return InvalidFieldError("options.mapping", "no column maps to display_name (客户名称)");
  }
  imp->header_.set_import_id(imp->import_id_);
  imp->header_.set_dry_run(imp->dry_run_);
  return imp;
}

void CustomerEngine::Import::Fail(Row* row, const absl::Status& failure) const {
  row->result.set_outcome(v1::IMPORT_OUTCOME_FAILED);
  // A row's message reaches the client as an rpc's error does: internal failures (storage,
  // the log) only as an incident id.
  const absl::Status status = ForClient(failure);
  std::string field;
  std::string message(status.message());
  if (auto bad = GetBadRequest(status); bad && bad->field_violations_size() > 0) {
    field = bad->field_violations(0).field();
    message = bad->field_violations(0).description();
  } else if (auto info = GetErrorInfo(status)) {
    if (auto it = info->metadata().find("field"); it != info->metadata().end()) field = it->second;
  }
  absl::string_view f = field;
  if (!absl::ConsumePrefix(&f, "customer.")) {
    if (!absl::StartsWith(f, "contact.")) f = "";
  }
  if (!f.empty()) {
    row->result.set_field(std::string(f));
    if (auto it = column_of_.find(std::string(f)); it != column_of_.end()) row->result.set_column(it->second);
    if (!message.empty() && !absl::StartsWith(message, f)) message = absl::StrCat(f, " ", message);
  }
  row->result.set_message(message);
  row->done = true;
}

void CustomerEngine::Import::Parse(const v1::ImportRow& in, const CustomerSettings& settings, Row* row) const {
  row->row_number = in.row_number();
  row->result.set_row_number(in.row_number());
  if (in.cells_size() > static_cast<int>(fields_.size())) {
    return Fail(row, absl::InvalidArgumentError(absl::StrCat("the row has ", in.cells_size(),
                                                             " cells but the header has ", fields_.size(),
                                                             " columns")));
  }
  for (int i = 0; i < in.cells_size(); ++i) {
    const std::string& field = fields_[i];
    const absl::string_view cell = absl::StripAsciiWhitespace(in.cells(i));
    if (field.empty() || cell.empty()) continue;
    if (absl::Status s = ParseCell(field, cell, settings, &row->customer, &row->contact); !s.ok()) {
      return Fail(row, InvalidFieldError(absl::StartsWith(field, "contact.") ? field : absl::StrCat("customer.", field),
                                         s.message()));
    }
    if (absl::StartsWith(field, "contact.")) {
      row->has_contact = true;
    } else if (field == "name") {
      auto id = ParseName(row->customer.name(), "customer.name");
      if (!id.ok()) return Fail(row, id.status());
      row->explicit_id = *id;
    } else {
      row->paths.push_back(field);
    }
  }
  if (row->has_contact && row->contact.name().empty()) {
    return Fail(row, InvalidFieldError("contact.name", "is required when the row has contact columns"));
  }
  if (!row->customer.phone().empty()) {
    auto p = NormalizePhone(row->customer.phone());
    if (!p.ok()) return Fail(row, InvalidFieldError("customer.phone", p.status().message()));
    row->phone = *p;
  }
  if (!row->customer.email().empty()) {
    auto e = NormalizeEmail(row->customer.email());
    if (!e.ok()) return Fail(row, InvalidFieldError("customer.email", e.status().message()));
    row->email = *e;
  }
  if (row->customer.kind() != v1::CUSTOMER_KIND_PERSON) {
    row->company = NormalizeCompanyName(row->customer.display_name());
  }
}

void CustomerEngine::Import::Run(Row* row, const CustomerSettings& settings, Completions::Handle pending) {
  CustomerEngine* e = engine_;
  rocksdb::DB* db = e->db_->db();
  const std::string rid = ImportRequestId(caller_.user_id, import_id_, row->row_number);
  auto finish_sync = [&](const absl::Status& s) {
    if (!s.ok()) Fail(row, s);
    row->done = true;
    pending.Done(absl::OkStatus());
  };
  // A resumed import: this row was applied before.
  if (!dry_run_) {
    auto seen = ReadHolders(db, rows::RequestPrefix(rid));
    if (!seen.ok()) return finish_sync(seen.status());
    if (!seen->empty()) {
      row->result.set_outcome(v1::IMPORT_OUTCOME_SKIPPED);
      row->result.set_customer(absl::StrCat("customers/", seen->front()));
      row->result.set_message("already imported under this import_id");
      return finish_sync(absl::OkStatus());
    }
  }

  // What the row matches: the named customer, else the holders of its keys (phone and email
  // first; the company name only when they found nothing). "customers/{id}", or in a dry run
  // "row N" for a customer an earlier row of this import would create.
  std::string match;
  std::vector<std::string> matched_on;
  if (!row->explicit_id.empty()) {
    auto s = ReadCustomer(db, rocksdb::ReadOptions(), row->explicit_id);
    if (!s.ok()) return finish_sync(s.status());
    if (!s->has_value() || (*s)->purged() || !CanSee(caller_, **s)) {
      return finish_sync(InvalidFieldError("customer.name", absl::StrCat(row->customer.name(), " not found")));
    }
    if (!(*s)->merged_into().empty()) {
      return finish_sync(InvalidFieldError(
          "customer.name", absl::StrCat(row->customer.name(), " was merged into customers/", (*s)->merged_into())));
    }
    match = absl::StrCat("customers/", row->explicit_id);
    matched_on.push_back("name");
  } else {
    std::map<std::string, std::vector<std::string>> by_id;  // id or "row N" -> matched_on
    auto collect = [&](const std::string& key, const std::string& prefix, const char* what) -> absl::Status {
      if (key.empty()) return absl::OkStatus();
      if (dry_run_) {
        if (auto it = dry_keys_.find(absl::StrCat(what, "/", key)); it != dry_keys_.end()) by_id[it->second].push_back(what);
      }
      CRM_ASSIGN_OR_RETURN(std::vector<std::string> ids, ReadHolders(db, prefix));
      for (const auto& id : ids) by_id[absl::StrCat("customers/", id)].push_back(what);
      return absl::OkStatus();
    };
    absl::Status s = collect(row->phone, rows::PhonePrefix(row->phone), "phone");
    if (s.ok()) s = collect(row->email, rows::EmailPrefix(row->email), "email");
    if (s.ok() && by_id.empty()) s = collect(row->company, rows::CompanyNamePrefix(row->company), "company_name");
    if (!s.ok()) return finish_sync(s);
    if (by_id.size() > 1) {
      std::vector<std::string> what;
      for (const auto& [id, on] : by_id) what.push_back(absl::StrCat(id, " (", absl::StrJoin(on, ", "), ")"));
      const std::string msg = absl::StrCat("matches more than one customer: ", absl::StrJoin(what, "; "));
      if (policy_ == v1::DEDUPE_POLICY_SKIP) {
        row->result.set_outcome(v1::IMPORT_OUTCOME_SKIPPED);
        row->result.set_message(msg);
        return finish_sync(absl::OkStatus());
      }
      return finish_sync(WithErrorInfo(absl::FailedPreconditionError(msg), "AMBIGUOUS_MATCH", {}));
    }
    if (!by_id.empty()) {
      match = by_id.begin()->first;
      matched_on = by_id.begin()->second;
    }
  }
  if (!match.empty()) {
    row->result.set_customer(match);
    for (const auto& on : matched_on) row->result.add_matched_on(on);
  }

  if (!match.empty() && policy_ == v1::DEDUPE_POLICY_SKIP) {
    row->result.set_outcome(v1::IMPORT_OUTCOME_SKIPPED);
    row->result.set_message(absl::StrCat("duplicate of ", row->result.customer(), " (",
                                         absl::StrJoin(matched_on, ", "), ")"));
    return finish_sync(absl::OkStatus());
  }
  if (absl::StartsWith(match, "row ")) {  // dry run: an earlier row of this import
    if (absl::Status s = ValidateProfile(ProfileOf(row->customer), row->paths, "customer", settings); !s.ok()) {
      return finish_sync(s);
    }
    row->result.set_outcome(v1::IMPORT_OUTCOME_UPDATED);
    row->result.set_message(absl::StrCat("would update the customer ", match, " creates"));
    return finish_sync(absl::OkStatus());
  }

  // The events: a new customer (and its contact), or the match updated or filled in.
  const bool create = match.empty();
  const std::string match_id(absl::StripPrefix(match, "customers/"));
  const v1::DedupePolicy policy = policy_;
  const bool dry = dry_run_;
  CustomerProfile profile = ProfileOf(row->customer);
  auto decide = [e, caller = caller_, create, policy, dry, profile, paths = row->paths, contact = row->contact,
                 has_contact = row->has_contact, settings, rid](const CustomerState* cur) -> absl::StatusOr<Decided> {
    Decided d;
    CustomerState next = cur ? *cur : CustomerState();
    auto add = [&](absl::StatusOr<std::vector<CustomerEvent>> events) -> absl::Status {
      CRM_RETURN_IF_ERROR(events.status());
      for (auto& ev : *events) {
        customers::Apply(next, ev, next.version() + 1, e->options_.clock->Now(), caller.user_id);
        d.events.push_back(std::move(ev));
      }
      return absl::OkStatus();
    };
    if (create) {
      if (cur != nullptr) return absl::AlreadyExistsError("customer id already exists");
      std::string number = "C-DRY-RUN";
      if (!dry) {
        CRM_ASSIGN_OR_RETURN(number, e->AllocateNumber());
      }
      CRM_RETURN_IF_ERROR(add(Decide(nullptr, caller, CreateCustomer{profile, number, settings})));
    } else {
      if (cur == nullptr || cur->purged()) return absl::NotFoundError("the matched customer no longer exists");
      UpdateCustomer cmd;
      cmd.settings = settings;
      cmd.profile = profile;
      for (const auto& p : paths) {
        if (policy == v1::DEDUPE_POLICY_UPDATE ? FieldDiffers(cur->profile(), profile, profile.GetDescriptor()->FindFieldByName(p))
                                               : (p != "tags" && IsEmpty(cur->profile(), p))) {
          cmd.paths.push_back(p);
        }
      }
      if (policy == v1::DEDUPE_POLICY_MERGE && !profile.tags().empty()) {
        google::protobuf::RepeatedPtrField<std::string> tags = cur->profile().tags();
        for (const auto& t : profile.tags()) {
          if (std::find(tags.begin(), tags.end(), t) == tags.end()) *tags.Add() = t;
        }
        if (tags.size() != cur->profile().tags_size()) {
          *cmd.profile.mutable_tags() = tags;
          cmd.paths.push_back("tags");
        }
      }
      if (!cmd.paths.empty()) CRM_RETURN_IF_ERROR(add(Decide(cur, caller, cmd)));
    }
    if (has_contact && (create || !HasContact(next, contact))) {
      Contact c = contact;
      c.set_id(DerivedId(rid, "contact"));
      CRM_RETURN_IF_ERROR(add(Decide(&next, caller, customers::AddContact{c})));
    }
    if (!create && d.events.empty() && !CanEdit(caller, *cur)) {  // "no changes" only to whom may edit
      return absl::PermissionDeniedError(cur->in_pool() ? "the customer is in the public pool; claim it first"
                                                        : "the customer belongs to another owner or team");
    }
    return d;
  };
  auto outcome = [row, create](const CustomerState& state, bool wrote) {
    row->result.set_customer(absl::StrCat("customers/", state.id()));
    if (!wrote) {
      row->result.set_outcome(v1::IMPORT_OUTCOME_SKIPPED);
      row->result.set_message(absl::StrCat("no changes to ", row->result.customer()));
    } else {
      row->result.set_outcome(create ? v1::IMPORT_OUTCOME_CREATED : v1::IMPORT_OUTCOME_UPDATED);
    }
    row->done = true;
  };

  if (dry_run_) {
    absl::optional<CustomerState> cur;
    if (!create) {
      auto s = ReadCustomer(db, rocksdb::ReadOptions(), match_id);
      if (!s.ok()) return finish_sync(s.status());
      cur = *std::move(s);
    }
    auto d = decide(cur.has_value() ? &*cur : nullptr);
    if (!d.ok()) return finish_sync(d.status());
    if (create) {
      const std::string self = absl::StrCat("row ", row->row_number);
      for (const auto& [what, key] : {std::pair<const char*, std::string>{"phone", row->phone},
                                      {"email", row->email}, {"company_name", row->company}}) {
        if (!key.empty()) dry_keys_.emplace(absl::StrCat(what, "/", key), self);
      }
      row->result.set_outcome(v1::IMPORT_OUTCOME_CREATED);
      row->done = true;
      return finish_sync(absl::OkStatus());
    }
    CustomerState st = *cur;
    outcome(st, !d->events.empty());
    return finish_sync(absl::OkStatus());
  }
  const std::string id = create ? NewUuidV7(e->options_.clock->Now()) : match_id;
  e->Execute(caller_, common::v1::ACTOR_SOURCE_API, {.id = id, .request_id = rid}, std::move(decide),
             [this, row, pending, outcome](absl::StatusOr<Written> w) {
               // Recorded only while Apply still waits for its wave: the row and this import
               // exist until then.
               pending.Done(absl::OkStatus(), false, [&] {
                 if (!w.ok()) {
                   Fail(row, w.status());
                 } else {
                   outcome(w->state, !w->token.empty());
                 }
               });
             },
             "", /*fresh_id=*/create);
}

absl::StatusOr<v1::ImportCustomersResponse> CustomerEngine::Import::Apply(
    const google::protobuf::RepeatedPtrField<v1::ImportRow>& in) {
  if (in.size() > kMaxRowsPerMessage) {
    return InvalidFieldError("rows", absl::StrCat("at most ", kMaxRowsPerMessage, " rows per message"));
  }
  for (int i = 0; i < in.size(); ++i) {
    if (in[i].row_number() <= last_row_) {
      return InvalidFieldError(absl::StrCat("rows[", i, "].row_number"),
                               absl::StrCat("must be positive and above the last row number, ", last_row_));
    }
    last_row_ = in[i].row_number();
  }
  CRM_ASSIGN_OR_RETURN(CustomerSettings settings, engine_->queries_.Settings());
  std::vector<Row> rows(in.size());
  for (int i = 0; i < in.size(); ++i) Parse(in[i], settings, &rows[i]);

  // Rows sharing a dedupe key run in file order (a later one must see the earlier one's
  // customer); the others of a wave run at once, so their appends share a group commit.
  std::vector<int> wave(rows.size(), 0);
  std::map<std::string, int> last_wave;  // key -> wave of the last row holding it
  int waves = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i].done) continue;
    std::vector<std::string> keys;
    if (!rows[i].phone.empty()) keys.push_back("p/" + rows[i].phone);
    if (!rows[i].email.empty()) keys.push_back("e/" + rows[i].email);
    if (!rows[i].company.empty()) keys.push_back("c/" + rows[i].company);
    if (!rows[i].explicit_id.empty()) keys.push_back("i/" + rows[i].explicit_id);
    int w = 0;
    for (const auto& k : keys) {
      if (auto it = last_wave.find(k); it != last_wave.end()) w = std::max(w, it->second + 1);
    }
    for (const auto& k : keys) last_wave[k] = w;
    wave[i] = w;
    waves = std::max(waves, w + 1);
  }
  for (int w = 0; w < waves; ++w) {
    int n = 0;
    for (size_t i = 0; i < rows.size(); ++i) n += !rows[i].done && wave[i] == w;
    Completions pending(n);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (!rows[i].done && wave[i] == w) Run(&rows[i], settings, pending.handle());
    }
    if (!pending.Wait(absl::Now() + engine_->options_.batch_timeout).ok()) {
      return absl::DeadlineExceededError(
          "rows of this batch did not become durable in time; send them again with the same import_id (rows "
          "already applied are skipped)");
    }
  }

  v1::ImportCustomersResponse resp;
  for (auto& r : rows) {
    switch (r.result.outcome()) {
      case v1::IMPORT_OUTCOME_CREATED: counts_.set_created(counts_.created() + 1); break;
      case v1::IMPORT_OUTCOME_UPDATED: counts_.set_updated(counts_.updated() + 1); break;
      case v1::IMPORT_OUTCOME_SKIPPED: counts_.set_skipped(counts_.skipped() + 1); break;
      default: counts_.set_failed(counts_.failed() + 1); break;
    }
    *resp.add_results() = std::move(r.result);
  }
  *resp.mutable_counts() = counts_;
  resp.set_dry_run(dry_run_);
  return resp;
}

}  // namespace crm::customers
