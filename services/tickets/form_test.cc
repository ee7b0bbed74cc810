#include "services/tickets/form.h"

#include "gtest/gtest.h"
#include "libs/common/status_testing.h"
#include "services/tickets/domain_testing.h"

namespace crm::tickets {
namespace {

using crm::testing::FieldsOf;

using testing::RepairForm;

v1::FieldValue Text(const std::string& t) {
  v1::FieldValue v;
  v.set_text(t);
  return v;
}
v1::FieldValue Number(int64_t n) {
  v1::FieldValue v;
  v.set_number(n);
  return v;
}

FormValues Valid() {
  FormValues v;
  v["serial"] = Text("AB123456");
  v["description"] = Text("屏幕无法点亮，重启无效");
  v["kind"].set_choice("hardware");
  return v;
}

TEST(FormTest, TheRepairFormIsAValidSchema) { EXPECT_TRUE(ValidateSchema(RepairForm(), "form").ok()); }

TEST(FormTest, SchemaMistakesNameTheirPart) {
  v1::FormSchema s = RepairForm();
  s.mutable_fields(1)->set_key("serial");
  EXPECT_EQ(FieldsOf(ValidateSchema(s, "form")), std::vector<std::string>{"form.fields[1].key"});
  s = RepairForm();
  s.mutable_fields(0)->set_pattern("([A-Z]");
  EXPECT_EQ(FieldsOf(ValidateSchema(s, "form")), std::vector<std::string>{"form.fields[0].pattern"});
  s = RepairForm();
  s.mutable_fields(2)->set_min(2000);
  EXPECT_EQ(FieldsOf(ValidateSchema(s, "form")), std::vector<std::string>{"form.fields[2].min"});
  s = RepairForm();
  s.mutable_fields(6)->mutable_options(1)->set_key("hardware");
  EXPECT_EQ(FieldsOf(ValidateSchema(s, "form")), std::vector<std::string>{"form.fields[6].options[1].key"});
  s = RepairForm();
  s.mutable_fields(3)->set_currency("XYZ");
  EXPECT_EQ(FieldsOf(ValidateSchema(s, "form")), std::vector<std::string>{"form.fields[3].currency"});
  s = RepairForm();
  s.mutable_fields(4)->set_pattern("x");
  EXPECT_EQ(FieldsOf(ValidateSchema(s, "form")), std::vector<std::string>{"form.fields[4].pattern"});
}

TEST(FormTest, ValidValuesPass) {
  FormValues v = Valid();
  v["quantity"] = Number(25);  // 2.5
  v["fee"] = Number(15000);
  v["bought_on"].set_date("2026-02-28");
  v["visit_at"].mutable_datetime()->set_seconds(1767225600);
  v["parts"].mutable_choices()->add_keys("screen");
  v["engineer"] = Text("u7");
  v["customer"] = Text("customers/0190f1c4-1111-7000-8000-000000000000");
  v["photo"] = Text("https://img.example.com/a.jpg");
  EXPECT_TRUE(ValidateValues(RepairForm(), v, "values").ok()) << ValidateValues(RepairForm(), v, "values");
}

TEST(FormTest, EveryBadValueIsNamedAtOnce) {
  FormValues v;
  v["serial"] = Text("ab123");                  // pattern
  v["description"] = Text("坏了");               // shorter than 5
  v["quantity"] = Number(0);                    // below min
  v["fee"] = Text("100");                       // wrong kind
  v["bought_on"].set_date("2026-02-30");        // no such day
  v["parts"].mutable_choices()->add_keys("screen");
  v["parts"].mutable_choices()->add_keys("battery");
  v["parts"].mutable_choices()->add_keys("board");  // more than 2
  v["engineer"] = Text("u 7");
  v["customer"] = Text("customers/42");
  v["photo"] = Text("ftp://x");
  v["colour"] = Text("red");                    // not in the form
  const std::vector<std::string> want = {"values.bought_on", "values.colour",    "values.customer", "values.description",
                                         "values.engineer",  "values.fee",       "values.parts",    "values.photo",
                                         "values.quantity",  "values.serial",    "values.kind"};
  absl::Status s = ValidateValues(RepairForm(), v, "values");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldsOf(s), want);
}

TEST(FormTest, OptionsAndRequiredFields) {
  FormValues v = Valid();
  v["kind"].set_choice("network");
  EXPECT_EQ(FieldsOf(ValidateValues(RepairForm(), v, "values")), std::vector<std::string>{"values.kind"});
  v = Valid();
  v.erase("serial");
  EXPECT_EQ(FieldsOf(ValidateValues(RepairForm(), v, "values")), std::vector<std::string>{"values.serial"});
  // An update checks what it sets, not what it leaves out.
  EXPECT_TRUE(ValidateValues(RepairForm(), v, "values", /*require=*/false).ok());
  v = Valid();
  v["parts"].mutable_choices()->add_keys("screen");
  v["parts"].mutable_choices()->add_keys("screen");
  EXPECT_EQ(FieldsOf(ValidateValues(RepairForm(), v, "values")), std::vector<std::string>{"values.parts"});
  v = Valid();
  v["serial"] = Text("AB123456\nCD654321");  // one line
  EXPECT_EQ(FieldsOf(ValidateValues(RepairForm(), v, "values")), std::vector<std::string>{"values.serial"});
}

}  // namespace
}  // namespace crm::tickets
