#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_H_

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "google/protobuf/any.pb.h"
#include "crm/customers/v1/customers_events.pb.h"
#include "libs/common/caller.h"
#include "libs/common/etag.h"
#include "libs/common/proto_time.h"
#include "libs/common/text.h"

namespace crm::customers {

// Customer numbers are C<yyyymmdd><seq> (projection::DayNumbers).
inline constexpr char kCustomerNumberPrefix[] = "C";

using v1::Contact;
using v1::CustomerProfile;
using v1::CustomerSettings;
using v1::CustomerState;

using CustomerEvent =
    std::variant<v1::CustomerCreated, v1::CustomerUpdated, v1::CustomerDeleted, v1::CustomerUndeleted,
                 v1::ContactAdded, v1::ContactUpdated, v1::ContactRemoved, v1::FollowUpRecorded,
                 v1::CustomerReturnedToPool, v1::CustomerClaimed, v1::CustomerPurged,
                 v1::CustomersMerged, v1::CustomerMergedInto, v1::CustomerUnmerged, v1::CustomerMergeUndone,
                 v1::CustomerRuleTagged, v1::CustomerRuleUntagged, v1::CustomerDealWon>;

using ::crm::Caller;

// Days a customer stays in the recycle bin before the scheduler purges it.
inline constexpr absl::Duration kRecycleBinRetention = absl::Hours(24 * 30);

// Mainland mobile numbers: accepts full-width digits, spaces, dashes, dots, parentheses and a
// +86 / 0086 / 86 prefix; returns the 11 ASCII digits starting with 1, or INVALID_ARGUMENT.
absl::StatusOr<std::string> NormalizePhone(absl::string_view phone);
// Trims, lower-cases, folds full-width characters; INVALID_ARGUMENT unless local@domain.tld.
absl::StatusOr<std::string> NormalizeEmail(absl::string_view email);
// The dedupe keys of a phone and an email (each empty when empty or not normalisable).
void NormalizedKeys(absl::string_view phone, absl::string_view email, std::string* normalized_phone,
                    std::string* normalized_email);

// INVALID_ARGUMENT naming `field` unless `tags` are at most 50 distinct texts of 1-50 characters.
absl::Status CheckTags(const google::protobuf::RepeatedPtrField<std::string>& tags, absl::string_view field);

// The industries customers choose from until an admin sets a list (GB/T 4754 sections).
const std::vector<v1::Industry>& DefaultIndustries();
// The settings in force: `stored` with defaults for what was never set.
CustomerSettings EffectiveSettings(const CustomerSettings& stored);

// INVALID_ARGUMENT naming `field` unless `code` is empty or in `settings`' industry list.
absl::Status CheckIndustry(const std::string& code, absl::string_view field, const CustomerSettings& settings);

// Checks every editable field of `profile` named in `paths` (all when empty) against the
// rules and `settings` (industry list); errors are INVALID_ARGUMENT naming "<prefix>.<field>".
absl::Status ValidateProfile(const CustomerProfile& profile, const std::vector<std::string>& paths,
                             absl::string_view prefix, const CustomerSettings& settings);

// Whether the repeated-string, enum, bool or string field `fd` differs between a and b.
bool FieldDiffers(const google::protobuf::Message& a, const google::protobuf::Message& b,
                  const google::protobuf::FieldDescriptor* fd);

// The editable profile fields, as update_mask paths.
const std::vector<std::string>& EditableFields();
// The editable contact fields, as update_mask paths.
const std::vector<std::string>& ContactFields();

// Reps see their own customers and their team's public pool (all of it when the customer has
// no team); managers their team's; admins and services all. Purged customers nobody.
bool CanSee(const Caller& caller, const CustomerState& state);
// Reps edit their own customers (not pool ones: they claim them first); managers their
// team's; admins and services all.
bool CanEdit(const Caller& caller, const CustomerState& state);
// Whether `caller` may give a customer to (owner, team).
bool CanAssign(const Caller& caller, const std::string& owner, const std::string& team);

struct CreateCustomer {
  CustomerProfile profile;
  std::string customer_number;  // allocated by the service
  CustomerSettings settings;    // effective settings
};
struct UpdateCustomer {
  CustomerProfile profile;         // new values
  std::vector<std::string> paths;  // which fields of profile to apply
  CustomerSettings settings;
};
struct DeleteCustomer {
  std::string reason;
};
struct UndeleteCustomer {};
struct AddContact {
  Contact contact;  // id assigned by the service
};
struct UpdateContact {
  Contact contact;  // contact.id names it
  std::vector<std::string> paths;
};
struct RemoveContact {
  std::string contact_id;
};
struct RecordFollowUp {
  v1::FollowUpRecorded follow_up;  // follow_up_id assigned by the service
  absl::Time when;                 // when it took place
  absl::Time now;
};
struct ReleaseToPool {
  std::string reason;
};
struct ClaimFromPool {
  std::string claim_day;  // the caller's day, yyyymmdd
  int32_t claims_today = 0;
  int32_t daily_limit = 0;  // 0: none
};
// The scheduler's: return an owned customer idle for `return_after_days` as of `now`.
struct ReturnIdleToPool {
  absl::Time now;
  int32_t return_after_days = 0;
};
// The scheduler's: purge a customer kRecycleBinRetention after its deletion, as of `now`.
struct PurgeDeleted {
  absl::Time now;
};

// Merging duplicates (查重合并), in merge.cc. On the survivor: take over `merged`.
struct MergeFrom {
  CustomerState merged;
  std::vector<std::string> take_from_merged;  // fields whose merged value wins
  int64_t expected_version = 0;               // the survivor's
  int64_t merged_expected_version = 0;
  // New ids of the copied contacts, by the merged customer's contact id (the service derives
  // them so that a retry copies under the same ids).
  std::map<std::string, std::string> contact_ids;
};
// On the merged customer, after the survivor's CustomersMerged.
struct MarkMerged {
  std::string survivor_id;
};
// On the merged customer: live again (first step of an unmerge).
struct Unmerge {
  std::string survivor_id;
};
// On the survivor: give back what the merge of `merged_id` took (second step).
struct UndoMerge {
  std::string merged_id;
};

// Company-name dedupe key: full-width folded, ASCII lower-cased, whitespace and punctuation
// (ASCII and CJK) removed, then legal-form suffixes (有限公司, 有限责任公司, 股份有限公司,
// 公司, Co., Ltd., Inc., ...) stripped from the end. Empty when nothing is left.
std::string NormalizeCompanyName(absl::string_view name);
// The profile fields a merge may take from the merged customer.
const std::vector<std::string>& MergeableFields();

// Behaviour tag rules, in tag_rules.cc. The scheduler's: give or take `rule`'s tag as the
// rule's evaluation found (`meets` with `measure`). Customers not live lose rule tags.
struct ApplyRuleTag {
  v1::TagRule rule;
  bool meets = false;
  int64_t measure = 0;
};
// INVALID_ARGUMENT naming "<field>.<part>" unless `rule` is well formed: id, tag, a known event
// type, a measure (SUM with an integer field), a match field of a string/enum/bool type,
// window and threshold not negative.
absl::Status ValidateTagRule(const v1::TagRule& rule, absl::string_view field);
// What one event contributes to `rule`'s measure: 1 (COUNT) or its sum_field (SUM), or
// nullopt when it does not match. The event is the envelope's payload.
absl::optional<int64_t> RuleContribution(const v1::TagRule& rule, const google::protobuf::Any& payload,
                                         absl::string_view event_type);
// Whether a behaviour rule with this id tagged the customer.
bool HasRuleTag(const CustomerState& s, absl::string_view rule_id);

// Pure decisions. `state` is null when the customer does not exist. Errors: INVALID_ARGUMENT
// (field named), PERMISSION_DENIED, NOT_FOUND, ABORTED (a merge's stale etags),
// FAILED_PRECONDITION (a broken rule, e.g. updating a deleted customer; ErrorInfo reasons
// NOT_IN_POOL, CLAIM_LIMIT_REACHED, IN_POOL). An empty vector: nothing to record. Uniqueness
// of phone/email needs the indexes and is the service's check; so is a single-customer
// command's etag, which the write kernel checks once after the decision (libs/kernel).
using Decision = absl::StatusOr<std::vector<CustomerEvent>>;
Decision Decide(const CustomerState* state, const Caller& caller, const CreateCustomer& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const UpdateCustomer& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const DeleteCustomer& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const UndeleteCustomer& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const AddContact& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const UpdateContact& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const RemoveContact& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const RecordFollowUp& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const ReleaseToPool& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const ClaimFromPool& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const ReturnIdleToPool& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const PurgeDeleted& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const MergeFrom& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const MarkMerged& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const Unmerge& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const UndoMerge& cmd);
Decision Decide(const CustomerState* state, const Caller& caller, const ApplyRuleTag& cmd);

// The last follow-up or ownership change: what the idle rule counts from.
absl::Time LastActivity(const CustomerState& state);
// Not in the recycle bin, not purged, not merged into another: in the indexes and lists.
bool IsLive(const CustomerState& state);
// Whether the customer is held by an owner who must follow it up (live, owned, not pooled).
bool IsOwnedAndLive(const CustomerState& state);

// Folds one event into `state` (version, times and actor come from the envelope). Deterministic:
// reads no clock.
void Apply(CustomerState& state, const CustomerEvent& event, int64_t version, absl::Time occurred_at,
           const std::string& actor);

// Apply's part for the merge (merge.cc) and rule tag (tag_rules.cc) events.
void ApplyEvent(CustomerState& s, const v1::CustomersMerged& e, const google::protobuf::Timestamp& at);
void ApplyEvent(CustomerState& s, const v1::CustomerMergedInto& e, const google::protobuf::Timestamp& at);
void ApplyEvent(CustomerState& s, const v1::CustomerUnmerged& e, const google::protobuf::Timestamp& at);
void ApplyEvent(CustomerState& s, const v1::CustomerMergeUndone& e, const google::protobuf::Timestamp& at);
void ApplyEvent(CustomerState& s, const v1::CustomerRuleTagged& e, const google::protobuf::Timestamp& at);
void ApplyEvent(CustomerState& s, const v1::CustomerRuleUntagged& e, const google::protobuf::Timestamp& at);
void ApplyEvent(CustomerState& s, const v1::CustomerDealWon& e, const google::protobuf::Timestamp& at);

// A won opportunity (the opportunities service's, reacted to by the engine): the customer
// becomes a deal customer. Nothing for a customer that is not live (the deal stays pending).
struct RecordDealWon {
  v1::CustomerDealWon deal;
};
absl::StatusOr<std::vector<CustomerEvent>> Decide(const CustomerState* state, const Caller& caller,
                                                  const RecordDealWon& cmd);

// The customer field names an event set or changed (history).
std::vector<std::string> ChangedFields(const CustomerEvent& event);

// The settings aggregate ("customer_settings"/"settings"). Who may change it is the permission
// matrix's (admins: the rpcs' access options in customers_service.proto), not checked here.
using SettingsEvent = std::variant<v1::PoolPolicySet, v1::IndustriesSet, v1::TagRulesSet, v1::ChannelCostSet>;
absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(const CustomerSettings& state,
                                                          const Caller& caller,
                                                          const v1::PoolPolicy& policy);
absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(
    const CustomerSettings& state, const Caller& caller,
    const std::vector<v1::Industry>& industries);
absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(const CustomerSettings& state, const Caller& caller,
                                                          const std::vector<v1::TagRule>& rules);
// One channel's cost for a month; amount 0 removes it. Nothing when unchanged.
absl::StatusOr<std::vector<SettingsEvent>> DecideSettings(const CustomerSettings& state, const Caller& caller,
                                                          const v1::ChannelCost& cost);
void ApplySettings(CustomerSettings& state, const SettingsEvent& event, int64_t version);

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_H_
