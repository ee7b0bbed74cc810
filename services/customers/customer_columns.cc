#include "services/customers/customer_columns.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/time_util.h"
#include "services/customers/customer.h"

namespace crm::customers {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

std::vector<ColumnSpec> MakeColumns() {
  return {
      {"name", "客户ID", {"id", "customer"}, true},
      {"customer_number", "客户编号", {"编号"}, false},
      {"display_name", "客户名称", {"客户名", "名称", "公司名称", "企业名称", "客户姓名"}, true},
      {"kind", "客户类型", {"类型"}, true},
      {"phone", "手机", {"手机号", "手机号码", "电话", "联系电话", "客户电话"}, true},
      {"email", "邮箱", {"电子邮箱", "邮件", "e-mail"}, true},
      {"lifecycle_status", "客户状态", {"生命周期", "状态", "客户阶段"}, true},
      {"cooperation_status", "合作状态", {}, true},
      {"source_channel", "来源渠道", {"客户来源", "来源"}, true},
      {"source", "来源说明", {"来源详情", "来源备注"}, true},
      {"industry", "行业", {"所属行业"}, true},
      {"scale", "企业规模", {"规模", "人员规模"}, true},
      {"region", "地区", {"所在地区", "省市", "区域"}, true},
      {"address", "地址", {"详细地址", "公司地址"}, true},
      {"tags", "标签", {"客户标签"}, true},
      {"owner_id", "负责人", {"负责人id", "销售", "归属人"}, true},
      {"team_id", "团队", {"所属团队", "部门"}, true},
      {"churn_reason", "流失原因", {}, true},
      {"notes", "备注", {"客户备注"}, true},
      {"contact.name", "联系人", {"联系人姓名", "联系人名称"}, true},
      {"contact.title", "联系人职务", {"职务", "职位"}, true},
      {"contact.phone", "联系人手机", {"联系人电话", "联系人手机号"}, true},
      {"contact.email", "联系人邮箱", {}, true},
      {"contact.wechat", "联系人微信", {"微信", "微信号"}, true},
      {"contact.notes", "联系人备注", {}, true},
      {"rule_tags", "行为标签", {}, false},
      {"in_pool", "在公海", {}, false},
      {"follow_up_count", "跟进次数", {}, false},
      {"last_follow_up_time", "最近跟进时间", {}, false},
      {"next_follow_up_time", "下次跟进时间", {}, false},
      {"first_cooperation_time", "首次合作时间", {}, false},
      {"last_cooperation_time", "最近合作时间", {}, false},
      {"create_time", "创建时间", {}, false},
      {"update_time", "更新时间", {}, false},
      {"created_by", "创建人", {}, false},
      {"deleted", "已删除", {}, false},
      {"delete_time", "删除时间", {}, false},
  };
}

// Chinese labels of enum values (the first is what export writes; the others import accepts).
const std::map<std::string, std::vector<std::string>>& EnumLabels() {
  static const auto* m = new std::map<std::string, std::vector<std::string>>{
      {"CUSTOMER_KIND_COMPANY", {"企业", "公司", "企业客户"}},
      {"CUSTOMER_KIND_PERSON", {"个人", "个人客户"}},
      {"LIFECYCLE_STATUS_POTENTIAL", {"潜在", "潜在客户"}},
      {"LIFECYCLE_STATUS_INTENT", {"意向", "意向客户"}},
      {"LIFECYCLE_STATUS_DEAL", {"成交", "成交客户", "已成交"}},
      {"LIFECYCLE_STATUS_LOST", {"流失", "流失客户", "已流失"}},
      {"COOPERATION_STATUS_NONE", {"未合作"}},
      {"COOPERATION_STATUS_ACTIVE", {"合作中"}},
      {"COOPERATION_STATUS_PAUSED", {"暂停合作"}},
      {"COOPERATION_STATUS_TERMINATED", {"终止合作"}},
      {"SOURCE_CHANNEL_WEBSITE", {"官网"}},
      {"SOURCE_CHANNEL_ECOMMERCE", {"电商"}},
      {"SOURCE_CHANNEL_STORE", {"门店"}},
      {"SOURCE_CHANNEL_EXHIBITION", {"展会"}},
      {"SOURCE_CHANNEL_REFERRAL", {"转介绍"}},
      {"SOURCE_CHANNEL_ONLINE_ADS", {"线上推广"}},
      {"SOURCE_CHANNEL_COLD_VISIT", {"陌生拜访"}},
      {"SOURCE_CHANNEL_SOCIAL_MEDIA", {"社交媒体"}},
      {"SOURCE_CHANNEL_OTHER", {"其他"}},
      {"COMPANY_SCALE_MICRO", {"1-19人", "微型"}},
      {"COMPANY_SCALE_SMALL", {"20-99人", "小型"}},
      {"COMPANY_SCALE_MEDIUM", {"100-499人", "中型"}},
      {"COMPANY_SCALE_LARGE", {"500-999人", "大型"}},
      {"COMPANY_SCALE_ENTERPRISE", {"1000人以上", "超大型"}},
  };
  return *m;
}

// Trimmed, full-width folded, ASCII lower-cased.
std::string Fold(absl::string_view s) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(FoldFullWidth(absl::StripAsciiWhitespace(s))));
}

absl::Status ParseEnum(const EnumDescriptor* type, absl::string_view cell, int* out) {
  const std::string want = Fold(cell);
  // The common prefix of the type's value names, e.g. "lifecycle_status_".
  const std::string prefix = absl::AsciiStrToLower(absl::StrCat(
      absl::StripSuffix(type->value(0)->name(), "UNSPECIFIED")));
  std::vector<std::string> accepted;
  for (int i = 1; i < type->value_count(); ++i) {
    const auto* v = type->value(i);
    const std::string full = absl::AsciiStrToLower(v->name());
    const std::string brief = std::string(absl::StripPrefix(full, prefix));
    auto labels = EnumLabels().find(v->name());
    bool hit = want == full || want == brief;
    if (labels != EnumLabels().end()) {
      for (const auto& l : labels->second) hit = hit || want == Fold(l);
      accepted.push_back(labels->second.front());
    } else {
      accepted.push_back(brief);
    }
    if (hit) {
      *out = v->number();
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", cell, "' is not one of ", absl::StrJoin(accepted, ", ")));
}

std::string EnumLabel(const EnumDescriptor* type, int number) {
  if (number == 0) return "";
  const auto* v = type->FindValueByNumber(number);
  if (v == nullptr) return absl::StrCat(number);
  auto labels = EnumLabels().find(v->name());
  return labels != EnumLabels().end() ? labels->second.front() : v->name();
}

std::string TimeCell(const google::protobuf::Timestamp& t, absl::TimeZone zone) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixSeconds(t.seconds()), zone);
}

const v1::Contact* PrimaryContact(const v1::Customer& c) {
  for (const auto& k : c.contacts()) {
    if (k.primary()) return &k;
  }
  return c.contacts().empty() ? nullptr : &c.contacts(0);
}

}  // namespace

const std::vector<ColumnSpec>& CustomerColumns() {
  static const auto* columns = new std::vector<ColumnSpec>(MakeColumns());
  return *columns;
}

const ColumnSpec* FindColumn(absl::string_view field) {
  for (const auto& c : CustomerColumns()) {
    if (c.field == field) return &c;
  }
  return nullptr;
}

const ColumnSpec* ColumnForHeader(absl::string_view header) {
  const std::string h = Fold(header);
  if (h.empty()) return nullptr;
  for (const auto& c : CustomerColumns()) {
    if (h == c.field || h == Fold(c.label)) return &c;
    for (const auto& a : c.aliases) {
      if (h == Fold(a)) return &c;
    }
  }
  return nullptr;
}

absl::Status ParseCell(absl::string_view field, absl::string_view cell, const v1::CustomerSettings& settings,
                       v1::Customer* customer, v1::Contact* contact) {
  const std::string value(absl::StripAsciiWhitespace(cell));
  google::protobuf::Message* target = customer;
  absl::string_view name = field;
  if (absl::ConsumePrefix(&name, "contact.")) target = contact;
  const FieldDescriptor* fd = target->GetDescriptor()->FindFieldByName(std::string(name));
  const ColumnSpec* spec = FindColumn(field);
  if (fd == nullptr || spec == nullptr || !spec->importable) {
    return absl::InvalidArgumentError(absl::StrCat("'", field, "' cannot be imported"));
  }
  const auto* r = target->GetReflection();
  if (field == "industry") {
    const std::string want = Fold(value);
    for (const auto& i : settings.industries()) {
      if (want == Fold(i.code()) || want == Fold(i.name())) {
        customer->set_industry(i.code());
        return absl::OkStatus();
      }
    }
    std::vector<std::string> names;
    for (const auto& i : settings.industries()) names.push_back(i.name());
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not an industry (", absl::StrJoin(names, ", "), ")"));
  }
  if (field == "tags") {
    customer->clear_tags();
    // The CJK separators ， ； 、 count as , ; too.
    const std::string ascii = absl::StrReplaceAll(value, {{"，", ","}, {"；", ";"}, {"、", ","}});
    for (absl::string_view t : absl::StrSplit(ascii, absl::ByAnyChar(",;|"))) {
      t = absl::StripAsciiWhitespace(t);
      if (!t.empty()) customer->add_tags(std::string(t));
    }
    return absl::OkStatus();
  }
  switch (fd->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      if (fd->is_repeated()) return absl::InvalidArgumentError(absl::StrCat("'", field, "' cannot be imported"));
      r->SetString(target, fd, value);
      return absl::OkStatus();
    case FieldDescriptor::CPPTYPE_ENUM: {
      int number = 0;
      if (absl::Status s = ParseEnum(fd->enum_type(), value, &number); !s.ok()) return s;
      r->SetEnumValue(target, fd, number);
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("'", field, "' cannot be imported"));
  }
}

std::string FormatCell(absl::string_view field, const v1::Customer& c, const v1::CustomerSettings& settings,
                       absl::TimeZone zone) {
  if (field == "industry") {
    for (const auto& i : settings.industries()) {
      if (i.code() == c.industry()) return i.name();
    }
    return c.industry();
  }
  if (field == "tags") return absl::StrJoin(c.tags(), ";");
  if (field == "rule_tags") {
    std::vector<std::string> tags;
    for (const auto& t : c.rule_tags()) tags.push_back(t.tag());
    return absl::StrJoin(tags, ";");
  }
  const google::protobuf::Message* m = &c;
  absl::string_view name = field;
  if (absl::ConsumePrefix(&name, "contact.")) {
    m = PrimaryContact(c);
    if (m == nullptr) return "";
  }
  const FieldDescriptor* fd = m->GetDescriptor()->FindFieldByName(std::string(name));
  if (fd == nullptr || fd->is_repeated()) return "";
  const auto* r = m->GetReflection();
  switch (fd->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: return r->GetString(*m, fd);
    case FieldDescriptor::CPPTYPE_ENUM: return EnumLabel(fd->enum_type(), r->GetEnumValue(*m, fd));
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(*m, fd) ? "是" : "";
    case FieldDescriptor::CPPTYPE_INT32: return absl::StrCat(r->GetInt32(*m, fd));
    case FieldDescriptor::CPPTYPE_INT64: return absl::StrCat(r->GetInt64(*m, fd));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (fd->message_type()->full_name() == "google.protobuf.Timestamp" && r->HasField(*m, fd)) {
        return TimeCell(static_cast<const google::protobuf::Timestamp&>(r->GetMessage(*m, fd)), zone);
      }
      return "";
    default: return "";
  }
}

}  // namespace crm::customers
