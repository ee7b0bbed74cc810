#include "libs/testing/field_coverage.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"

namespace crm::testing {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

std::vector<std::string> CoverageGaps(const google::protobuf::Descriptor& type, const FieldPlace& place) {
  std::vector<std::string> gaps;
  for (int i = 0; i < type.field_count(); ++i) {
    const std::string& f = type.field(i)->name();
    const bool handled = place.handled.count(f) > 0;
    const bool excluded = place.excluded.count(f) > 0;
    if (!handled && !excluded) {
      gaps.push_back(absl::StrCat(type.name(), ".", f, " is not handled by ", place.where,
                                  ": handle it there, or list it in this test's exclusions with the reason"));
    } else if (handled && excluded) {
      gaps.push_back(absl::StrCat(type.name(), ".", f, " is handled by ", place.where,
                                  " but listed as excluded (\"", place.excluded.at(f), "\"): drop the exclusion"));
    }
  }
  for (const auto& [f, why] : place.excluded) {
    if (type.FindFieldByName(f) == nullptr) {
      gaps.push_back(absl::StrCat(type.name(), " has no field ", f, " any more: drop its exclusion for ", place.where));
    }
  }
  return gaps;
}

void FillEveryField(Message* m, int depth) {
  const auto* r = m->GetReflection();
  const auto* d = m->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string text = absl::StrCat(f->name(), "-value");
    const int enum_value = f->enum_type() != nullptr && f->enum_type()->value_count() > 1
                               ? f->enum_type()->value(1)->number()
                               : 1;
    if (f->is_repeated()) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING: r->AddString(m, f, text); break;
        case FieldDescriptor::CPPTYPE_ENUM: r->AddEnumValue(m, f, enum_value); break;
        case FieldDescriptor::CPPTYPE_BOOL: r->AddBool(m, f, true); break;
        case FieldDescriptor::CPPTYPE_INT32: r->AddInt32(m, f, 7); break;
        case FieldDescriptor::CPPTYPE_INT64: r->AddInt64(m, f, 7); break;
        case FieldDescriptor::CPPTYPE_UINT32: r->AddUInt32(m, f, 7); break;
        case FieldDescriptor::CPPTYPE_UINT64: r->AddUInt64(m, f, 7); break;
        case FieldDescriptor::CPPTYPE_DOUBLE: r->AddDouble(m, f, 7); break;
        case FieldDescriptor::CPPTYPE_FLOAT: r->AddFloat(m, f, 7); break;
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth > 0) FillEveryField(r->AddMessage(m, f), depth - 1);
          break;
      }
      continue;
    }
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING: r->SetString(m, f, text); break;
      case FieldDescriptor::CPPTYPE_ENUM: r->SetEnumValue(m, f, enum_value); break;
      case FieldDescriptor::CPPTYPE_BOOL: r->SetBool(m, f, true); break;
      case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(m, f, 7); break;
      case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(m, f, 7); break;
      case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(m, f, 7); break;
      case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(m, f, 7); break;
      case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(m, f, 7); break;
      case FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(m, f, 7); break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth > 0) FillEveryField(r->MutableMessage(m, f), depth - 1);
        break;
    }
  }
}

std::set<std::string> EqualFields(const Message& a, const Message& b) {
  std::set<std::string> same;
  const auto* d = a.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (google::protobuf::util::MessageDifferencer().CompareWithFields(a, b, {f}, {f})) {
      same.insert(f->name());
    }
  }
  return same;
}

std::set<std::string> FieldNames(const google::protobuf::Descriptor& type) {
  std::set<std::string> names;
  for (int i = 0; i < type.field_count(); ++i) names.insert(type.field(i)->name());
  return names;
}

}  // namespace crm::testing
