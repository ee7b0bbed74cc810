#ifndef CRM_SERVICES_TICKETS_FORM_H_
#define CRM_SERVICES_TICKETS_FORM_H_

// Custom forms of ticket types (自定义表单): the schema an admin defines and the values a
// ticket carries, checked field by field. Pure, no I/O.
#include <map>
#include <string>

#include "absl/status/status.h"
#include "crm/tickets/v1/tickets_events.pb.h"

namespace crm::tickets {

using FormValues = std::map<std::string, v1::FieldValue>;

// INVALID_ARGUMENT naming "<prefix>.fields[i].<part>" unless the schema is well formed: at
// most 100 fields; keys [a-z][a-z0-9_]{0,39}, unique; labels 1-40 characters; a known type;
// bounds that fit the type (lengths for text, URL and multiple choice; min <= max); a
// scale 0-6; a known currency; a pattern RE2 compiles (text fields only); options with unique
// keys for choices, and for nothing else.
absl::Status ValidateSchema(const v1::FormSchema& schema, const std::string& prefix);

// INVALID_ARGUMENT naming "<prefix>.<key>" for every value that does not fit its field, all
// at once (google.rpc.BadRequest lists each): a key the form does not have, the wrong kind of
// value, a required field without a value (when `require`), a length, a bound or the pattern
// not met, an option the field does not offer, a malformed date, URL, user or customer.
absl::Status ValidateValues(const v1::FormSchema& schema, const FormValues& values, const std::string& prefix,
                            bool require = true);

// Whether `values` holds a non-empty value for `key`.
bool HasValue(const FormValues& values, const std::string& key);

// [a-z][a-z0-9_]{0,39}: form field keys, workflow state and transition ids.
bool ValidIdentifier(const std::string& s);

// The field of `schema` with `key`; null when none.
const v1::FormField* FindField(const v1::FormSchema& schema, const std::string& key);

}  // namespace crm::tickets

#endif  // CRM_SERVICES_TICKETS_FORM_H_
