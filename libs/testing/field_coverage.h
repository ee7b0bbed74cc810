#ifndef CRM_LIBS_TESTING_FIELD_COVERAGE_H_
#define CRM_LIBS_TESTING_FIELD_COVERAGE_H_

// Tests that every place a profile field must be handled in does handle it. A field added to
// CustomerProfile or LeadProfile and forgotten in one place (the API message, the editable
// list, a length limit, an import column, a CLI flag, the ERP mapping, lead conversion) then
// fails a test naming the field and the file to edit, where before it was dropped silently
// (docs/architecture.md §8). Test-only: linked by tests, never by a service or a tool.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace crm::testing {

// One place in the code that must handle each field of a message type.
struct FieldPlace {
  // The file (and function) to edit, as a failing test names it, e.g.
  // "services/customers/customer.cc (EditableFields)".
  std::string where;
  // The fields the place handles, as the test found them (by exercising the code where it can).
  std::set<std::string> handled;
  // The fields the place leaves out on purpose, each with why. Default: none.
  std::map<std::string, std::string> excluded;
};

// One line per gap: a field of `type` neither handled nor excluded ("add it there or list it
// as excluded with the reason"), an exclusion that names no field of `type`, or a field both
// handled and excluded (a stale exclusion). Empty when `place` covers `type`.
std::vector<std::string> CoverageGaps(const google::protobuf::Descriptor& type, const FieldPlace& place);

// Sets every field of `m` to a value other than its default, distinct between string fields
// ("<field>-value"): enums to their first non-zero value, bools to true, integers to 7,
// repeated fields to one such element, message fields recursively (up to `depth` levels).
// A test copies the result and sees which fields survived.
void FillEveryField(google::protobuf::Message* m, int depth = 3);

// The names of the fields of `a` whose value `b` (of the same type) has too.
std::set<std::string> EqualFields(const google::protobuf::Message& a, const google::protobuf::Message& b);

// The names of the fields `type` declares.
std::set<std::string> FieldNames(const google::protobuf::Descriptor& type);

}  // namespace crm::testing

#endif  // CRM_LIBS_TESTING_FIELD_COVERAGE_H_
