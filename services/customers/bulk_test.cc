// Bulk import and export (批量导入/导出) through the engine, given/when/then.
#include <algorithm>
#include <map>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/customers/customer_columns.h"
#include "services/customers/customer_engine_fixture.h"

namespace crm::customers {
namespace {

using namespace enginetest;  // NOLINT: the fixture and its callers

TEST(ColumnsTest, CellsAcceptNamesBriefNamesLabelsAndFullWidth) {
  const v1::CustomerSettings settings = EffectiveSettings({});
  for (const std::string cell : {"LIFECYCLE_STATUS_DEAL", "deal", "成交", "已成交", "ＤＥＡＬ", " Deal "}) {
    v1::Customer c;
    v1::Contact k;
    ASSERT_TRUE(ParseCell("lifecycle_status", cell, settings, &c, &k).ok()) << cell;
    EXPECT_EQ(c.lifecycle_status(), v1::LIFECYCLE_STATUS_DEAL) << cell;
    // and the export writes the label back
    EXPECT_EQ(FormatCell("lifecycle_status", c, settings, absl::UTCTimeZone()), "成交");
  }
  v1::Customer c;
  v1::Contact k;
  ASSERT_TRUE(ParseCell("scale", "100-499人", settings, &c, &k).ok());
  EXPECT_EQ(c.scale(), v1::COMPANY_SCALE_MEDIUM);
  ASSERT_TRUE(ParseCell("source_channel", "转介绍", settings, &c, &k).ok());
  EXPECT_EQ(c.source_channel(), v1::SOURCE_CHANNEL_REFERRAL);
  ASSERT_TRUE(ParseCell("contact.wechat", "wx_li", settings, &c, &k).ok());
  EXPECT_EQ(k.wechat(), "wx_li");
  EXPECT_FALSE(ParseCell("industry", "航天", settings, &c, &k).ok());
  EXPECT_FALSE(ParseCell("create_time", "2026-01-01", settings, &c, &k).ok());  // output only
  EXPECT_EQ(ColumnForHeader(" 手机号码 ")->field, "phone");
  EXPECT_EQ(ColumnForHeader("ＰＨＯＮＥ")->field, "phone");
  EXPECT_EQ(ColumnForHeader("区号"), nullptr);
}

class BulkTest : public CustomerEngineTest {
 protected:
  // Columns separated by '|', rows likewise; row numbers start at 2 (the header is 1).
  static v1::ImportOptions Options(const std::string& header, v1::DedupePolicy policy = v1::DEDUPE_POLICY_SKIP) {
    v1::ImportOptions o;
    for (absl::string_view c : absl::StrSplit(header, '|')) o.add_columns(std::string(c));
    o.set_dedupe_policy(policy);
    return o;
  }
  static google::protobuf::RepeatedPtrField<v1::ImportRow> Rows(const std::vector<std::string>& rows,
                                                                int64_t first = 2) {
    google::protobuf::RepeatedPtrField<v1::ImportRow> out;
    for (const auto& r : rows) {
      v1::ImportRow* row = out.Add();
      row->set_row_number(first++);
      for (absl::string_view c : absl::StrSplit(r, '|')) row->add_cells(std::string(c));
    }
    return out;
  }
  absl::StatusOr<v1::ImportCustomersResponse> Import(const Caller& c, const v1::ImportOptions& o,
                                                     const std::vector<std::string>& rows) {
    auto imp = engine()->StartImport(c, o);
    if (!imp.ok()) return imp.status();
    return (*imp)->Apply(Rows(rows));
  }
  std::vector<v1::Customer> All(const Caller& c) {
    v1::ListCustomersRequest req;
    req.set_page_size(1000);
    req.set_order_by("customer_number");
    auto r = engine()->queries().List(c, req, absl::Now() + absl::Seconds(5));
    EXPECT_TRUE(r.ok()) << r.status();
    return {r->customers().begin(), r->customers().end()};
  }
  std::vector<v1::ExportCustomersResponse> Export(const Caller& c, const v1::ExportCustomersRequest& req,
                                                  absl::Status* status) {
    std::vector<v1::ExportCustomersResponse> out;
    *status = engine()->queries().Export(c, req, absl::Now() + absl::Seconds(5), [&](v1::ExportCustomersResponse r) {
      out.push_back(std::move(r));
      return true;
    });
    return out;
  }
};

TEST_F(BulkTest, ChineseHeadersMapByThemselvesAndRowsBecomeCustomersWithContacts) {
  // Given a file with Chinese headers, an unknown column and labelled values
  auto o = Options("客户名称|手机|客户类型|客户状态|行业|标签|联系人|联系人职务|区号");
  // When it is imported
  auto r = Import(kRep, o,
                  {"星辰科技有限公司|138 1234 5678|企业|意向|制造业|重点，华东、展会|王经理|采购总监|0755",
                   "张伟|13912345678|个人|LIFECYCLE_STATUS_DEAL|it_internet|||"});
  ASSERT_TRUE(r.ok()) << r.status();
  // Then both rows are created, mapped as labelled, the unknown column ignored
  ASSERT_EQ(r->results_size(), 2);
  EXPECT_EQ(r->results(0).outcome(), v1::IMPORT_OUTCOME_CREATED) << r->results(0).message();
  EXPECT_EQ(r->results(1).outcome(), v1::IMPORT_OUTCOME_CREATED) << r->results(1).message();
  EXPECT_EQ(r->counts().created(), 2);
  auto imp = engine()->StartImport(kRep, o);
  ASSERT_TRUE(imp.ok());
  EXPECT_EQ((*imp)->header().mapping().at("手机"), "phone");
  ASSERT_EQ((*imp)->header().ignored_columns_size(), 1);
  EXPECT_EQ((*imp)->header().ignored_columns(0), "区号");
  auto all = All(kRep);
  ASSERT_EQ(all.size(), 2u);
  const v1::Customer& star = all[0];
  EXPECT_EQ(star.name(), r->results(0).customer());
  EXPECT_EQ(star.phone(), "138 1234 5678");
  EXPECT_EQ(star.kind(), v1::CUSTOMER_KIND_COMPANY);
  EXPECT_EQ(star.lifecycle_status(), v1::LIFECYCLE_STATUS_INTENT);
  EXPECT_EQ(star.industry(), "manufacturing");
  EXPECT_EQ(std::vector<std::string>(star.tags().begin(), star.tags().end()),
            (std::vector<std::string>{"重点", "华东", "展会"}));
  ASSERT_EQ(star.contacts_size(), 1);
  EXPECT_EQ(star.contacts(0).name(), "王经理");
  EXPECT_EQ(star.contacts(0).title(), "采购总监");
  EXPECT_TRUE(star.contacts(0).primary());
  EXPECT_EQ(all[1].kind(), v1::CUSTOMER_KIND_PERSON);
  EXPECT_EQ(all[1].lifecycle_status(), v1::LIFECYCLE_STATUS_DEAL);
  EXPECT_EQ(all[1].owner_id(), "u1");
}

TEST_F(BulkTest, BadRowsFailWithFieldAndColumnWhileGoodRowsAreImported) {
  auto o = Options("名称|电话|状态|邮箱");
  auto r = Import(kRep, o,
                  {"好客户|13800000001||", "坏手机|12345||", "坏状态|13800000003|热情|", "|13800000004||",
                   "多一格|13800000005|||x", "坏邮箱|13800000006||not-mail", "好客户二|13800000007|流失|"});
  ASSERT_TRUE(r.ok()) << r.status();
  std::map<int64_t, v1::ImportRowResult> by_row;
  for (const auto& x : r->results()) by_row[x.row_number()] = x;
  EXPECT_EQ(by_row[2].outcome(), v1::IMPORT_OUTCOME_CREATED);
  EXPECT_EQ(by_row[3].outcome(), v1::IMPORT_OUTCOME_FAILED);
  EXPECT_EQ(by_row[3].field(), "phone");
  EXPECT_EQ(by_row[3].column(), "电话");
  EXPECT_EQ(by_row[4].field(), "lifecycle_status");
  EXPECT_NE(by_row[4].message().find("意向"), std::string::npos) << by_row[4].message();  // lists what is accepted
  EXPECT_EQ(by_row[5].field(), "display_name");
  EXPECT_EQ(by_row[5].column(), "名称");
  EXPECT_EQ(by_row[6].outcome(), v1::IMPORT_OUTCOME_FAILED);
  EXPECT_NE(by_row[6].message().find("5 cells"), std::string::npos) << by_row[6].message();
  EXPECT_EQ(by_row[7].field(), "email");
  // Lost without a churn reason breaks a rule of the customer, not of the file
  EXPECT_EQ(by_row[8].outcome(), v1::IMPORT_OUTCOME_FAILED);
  EXPECT_EQ(by_row[8].field(), "churn_reason");
  EXPECT_EQ(r->counts().created(), 1);
  EXPECT_EQ(r->counts().failed(), 6);
  EXPECT_EQ(All(kRep).size(), 1u);
}

TEST_F(BulkTest, DedupePoliciesSkipUpdateOrFillTheMatchedCustomer) {
  // Given a customer with a phone, an address and a tag
  v1::CreateCustomerRequest create;
  create.mutable_customer()->set_display_name("深圳星辰科技有限公司");
  create.mutable_customer()->set_phone("13812345678");
  create.mutable_customer()->set_address("深圳南山");
  create.mutable_customer()->add_tags("老客户");
  auto existing = Sync(&CustomerCommands::Create, kRep, create);
  ASSERT_TRUE(existing.ok());
  const std::vector<std::string> row = {"星辰科技（深圳）|+86 138-1234-5678|广州天河|新标签|广东/深圳"};
  auto o = Options("客户名称|手机|地址|标签|地区");

  // SKIP: the row is skipped, naming the match and the key
  auto skip = Import(kRep, o, row);
  ASSERT_TRUE(skip.ok());
  EXPECT_EQ(skip->results(0).outcome(), v1::IMPORT_OUTCOME_SKIPPED);
  EXPECT_EQ(skip->results(0).customer(), existing->name());
  EXPECT_EQ(skip->results(0).matched_on(0), "phone");

  // MERGE: fills the empty region, keeps name and address, adds the tag
  o.set_dedupe_policy(v1::DEDUPE_POLICY_MERGE);
  auto merge = Import(kRep, o, row);
  ASSERT_TRUE(merge.ok());
  EXPECT_EQ(merge->results(0).outcome(), v1::IMPORT_OUTCOME_UPDATED) << merge->results(0).message();
  auto c = Get(kRep, existing->name());
  EXPECT_EQ(c->display_name(), "深圳星辰科技有限公司");
  EXPECT_EQ(c->address(), "深圳南山");
  EXPECT_EQ(c->region(), "广东/深圳");
  EXPECT_EQ(c->tags_size(), 2);

  // MERGE again: nothing left to fill
  auto again = Import(kRep, o, row);
  EXPECT_EQ(again->results(0).outcome(), v1::IMPORT_OUTCOME_SKIPPED);

  // UPDATE: the row's values win, tags replaced
  o.set_dedupe_policy(v1::DEDUPE_POLICY_UPDATE);
  auto update = Import(kRep, o, row);
  EXPECT_EQ(update->results(0).outcome(), v1::IMPORT_OUTCOME_UPDATED) << update->results(0).message();
  c = Get(kRep, existing->name());
  EXPECT_EQ(c->display_name(), "星辰科技（深圳）");
  EXPECT_EQ(c->address(), "广州天河");
  EXPECT_EQ(std::vector<std::string>(c->tags().begin(), c->tags().end()), std::vector<std::string>{"新标签"});
  EXPECT_EQ(All(kRep).size(), 1u);
}

TEST_F(BulkTest, RowsOfOneFileMatchEarlierRowsAndCompanyNamesIgnoringLegalForms) {
  auto o = Options("客户名称|手机");
  auto r = Import(kRep, o,
                  {"月光商贸有限公司|13800000001", "另一家|13800000001", "月光商贸|13800000002", "星河贸易|13800000003",
                   "月光商贸|13800000003"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results(0).outcome(), v1::IMPORT_OUTCOME_CREATED);
  // Same phone as the first row
  EXPECT_EQ(r->results(1).outcome(), v1::IMPORT_OUTCOME_SKIPPED);
  EXPECT_EQ(r->results(1).customer(), r->results(0).customer());
  EXPECT_EQ(r->results(1).matched_on(0), "phone");
  // Another phone, the first row's company without its legal form
  EXPECT_EQ(r->results(2).outcome(), v1::IMPORT_OUTCOME_SKIPPED);
  EXPECT_EQ(r->results(2).customer(), r->results(0).customer());
  EXPECT_EQ(r->results(2).matched_on(0), "company_name");
  EXPECT_EQ(r->results(3).outcome(), v1::IMPORT_OUTCOME_CREATED);
  // A phone match is authoritative: the company name is not consulted
  EXPECT_EQ(r->results(4).customer(), r->results(3).customer());
  EXPECT_EQ(r->results(4).matched_on_size(), 1);
  // Two customers with one company name: a name-only row is ambiguous
  ASSERT_TRUE(Create(kRep, "月光商贸", "").ok());
  auto ambiguous = Import(kRep, Options("客户名称", v1::DEDUPE_POLICY_MERGE), {"月光商贸股份有限公司"});
  ASSERT_TRUE(ambiguous.ok());
  EXPECT_EQ(ambiguous->results(0).outcome(), v1::IMPORT_OUTCOME_FAILED);
  EXPECT_NE(ambiguous->results(0).message().find("more than one"), std::string::npos)
      << ambiguous->results(0).message();
  // Persons are not matched by name
  auto person = Import(kRep, Options("客户名称|客户类型"), {"月光商贸|个人"});
  EXPECT_EQ(person->results(0).outcome(), v1::IMPORT_OUTCOME_CREATED);
}

TEST_F(BulkTest, DryRunReportsWhatTheImportWouldDoAndWritesNothing) {
  auto existing = Create(kRep, "老客户", "13800000009");
  ASSERT_TRUE(existing.ok());
  const std::vector<std::string> rows = {"甲|13800000001", "乙|12", "丙|13800000009", "甲二|13800000001",
                                         "丁|13800000004"};
  auto o = Options("客户名称|手机", v1::DEDUPE_POLICY_SKIP);
  o.set_dry_run(true);
  auto dry = Import(kRep, o, rows);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_TRUE(dry->dry_run());
  EXPECT_EQ(All(kRep).size(), 1u);
  EXPECT_EQ(dry->results(3).customer(), "row 2");
  o.set_dry_run(false);
  auto real = Import(kRep, o, rows);
  ASSERT_TRUE(real.ok());
  for (int i = 0; i < dry->results_size(); ++i) {
    EXPECT_EQ(dry->results(i).outcome(), real->results(i).outcome()) << "row " << i + 2;
  }
  EXPECT_EQ(real->counts().created(), 2);
  EXPECT_EQ(real->counts().skipped(), 2);
  EXPECT_EQ(real->counts().failed(), 1);
  EXPECT_EQ(All(kRep).size(), 3u);
}

TEST_F(BulkTest, AResumedImportNeverAppliesARowTwice) {
  auto o = Options("客户名称|手机|备注", v1::DEDUPE_POLICY_UPDATE);
  o.set_import_id("crm-2026-11-import");
  const std::vector<std::string> rows = {"甲|13800000001|第一", "乙||没有手机"};
  auto first = Import(kRep, o, rows);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->counts().created(), 2);
  // The stream broke; the client sends the same rows again under the same id
  auto second = Import(kRep, o, rows);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->counts().skipped(), 2);
  EXPECT_EQ(second->results(1).message(), "already imported under this import_id");
  EXPECT_EQ(second->results(1).customer(), first->results(1).customer());
  EXPECT_EQ(All(kRep).size(), 2u);
}

// Rows were remembered by import_id alone: a second user's import with the same id skipped
// their own rows and showed the first user's customer ids, and a client request_id spelled
// like a row's did the same.
TEST_F(BulkTest, AnImportIdNamesOneUsersImport) {
  auto o = Options("客户名称|手机", v1::DEDUPE_POLICY_SKIP);
  o.set_import_id("weekly");
  auto first = Import(kRep, o, {"甲|13800000001", "乙|13800000002"});
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->counts().created(), 2);
  auto other = Import(kRep2, o, {"丙|13800000003", "丁|13800000004"});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->counts().created(), 2);
  EXPECT_EQ(other->counts().skipped(), 0);
  for (const auto& r : other->results()) {
    for (const auto& mine : first->results()) EXPECT_NE(r.customer(), mine.customer());
  }
  EXPECT_EQ(All(kRep2).size(), 2u);

  auto forged = Create(kRep2, "冒名", "13800000005", "", "import-monthly-2");
  ASSERT_TRUE(forged.ok()) << forged.status();
  o.set_import_id("monthly");
  auto mine = Import(kRep, o, {"戊|13800000006"});
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->results(0).outcome(), v1::IMPORT_OUTCOME_CREATED) << mine->results(0).message();
  EXPECT_NE(mine->results(0).customer(), forged->name());
  // And the first user still resumes their own.
  o.set_import_id("weekly");
  auto again = Import(kRep, o, {"甲|13800000001", "乙|13800000002"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->results(0).message(), "already imported under this import_id");
  EXPECT_EQ(again->results(0).customer(), first->results(0).customer());
}

TEST_F(BulkTest, ImportObeysTheCallersPermissions) {
  auto other = Create(kRep2, "别人的客户", "13800000002");
  ASSERT_TRUE(other.ok());
  auto o = Options("客户名称|手机|负责人", v1::DEDUPE_POLICY_UPDATE);
  auto r = Import(kRep, o, {"给别人|13800000001|u2", "别人的客户|13800000002|"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results(0).outcome(), v1::IMPORT_OUTCOME_FAILED);
  EXPECT_EQ(r->results(1).outcome(), v1::IMPORT_OUTCOME_FAILED);
  EXPECT_NE(r->results(1).message().find("another owner"), std::string::npos) << r->results(1).message();
  // A manager imports for the team's reps
  auto m = Import(kManager, o, {"给别人|13800000001|u2"});
  EXPECT_EQ(m->results(0).outcome(), v1::IMPORT_OUTCOME_CREATED) << m->results(0).message();
}

TEST_F(BulkTest, MalformedOptionsAndBatchesNameTheField) {
  auto o = Options("客户名称|手机");
  (*o.mutable_mapping())["手机"] = "salary";
  EXPECT_EQ(FieldOf(engine()->StartImport(kRep, o).status()), "options.mapping[手机]");
  o = Options("手机|备注");
  EXPECT_EQ(FieldOf(engine()->StartImport(kRep, o).status()), "options.mapping");
  o = Options("客户名称|名称");  // both map to display_name
  EXPECT_EQ(FieldOf(engine()->StartImport(kRep, o).status()), "options.mapping");
  o = Options("客户名称|客户名称");
  EXPECT_EQ(FieldOf(engine()->StartImport(kRep, o).status()), "options.columns[1]");
  o = Options("客户名称");
  o.set_import_id("has space");
  EXPECT_EQ(FieldOf(engine()->StartImport(kRep, o).status()), "options.import_id");
  auto imp = engine()->StartImport(kRep, Options("客户名称"));
  ASSERT_TRUE(imp.ok());
  ASSERT_TRUE((*imp)->Apply(Rows({"甲"}, 5)).ok());
  EXPECT_EQ(FieldOf((*imp)->Apply(Rows({"乙"}, 5)).status()), "rows[0].row_number");
}

TEST_F(BulkTest, ExportWritesWhatListShowsAndImportsBackUnchanged) {
  auto o = Options("客户名称|手机|客户状态|行业|标签|联系人|联系人手机");
  ASSERT_TRUE(Import(kRep, o, {"星辰科技|13800000001|意向|制造业|甲;乙|王经理|13900000001", "月光|13800000002|||||"}).ok());
  ASSERT_TRUE(Create(kRep2, "别人的", "13800000003").ok());
  v1::ExportCustomersRequest req;
  req.set_order_by("customer_number");
  absl::Status st;
  auto chunks = Export(kRep, req, &st);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_FALSE(chunks.empty());
  const auto& header = chunks[0].columns();
  auto col = [&](const std::string& label) { return std::find(header.begin(), header.end(), label) - header.begin(); };
  EXPECT_EQ(chunks.back().total_rows(), 2);  // the rep sees only its own
  std::vector<v1::ExportRow> rows;
  for (const auto& c : chunks) rows.insert(rows.end(), c.rows().begin(), c.rows().end());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].cells(col("客户状态")), "意向");
  EXPECT_EQ(rows[0].cells(col("行业")), "制造业");
  EXPECT_EQ(rows[0].cells(col("标签")), "甲;乙");
  EXPECT_EQ(rows[0].cells(col("联系人手机")), "13900000001");
  EXPECT_EQ(rows[0].cells(col("创建时间")), "2026-01-01 08:00:00");
  // Imported back with UPDATE, every row matches itself by id and changes nothing
  v1::ImportOptions back;
  for (const auto& h : header) back.add_columns(h);
  back.set_dedupe_policy(v1::DEDUPE_POLICY_UPDATE);
  auto imp = engine()->StartImport(kRep, back);
  ASSERT_TRUE(imp.ok()) << imp.status();
  google::protobuf::RepeatedPtrField<v1::ImportRow> in;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto* r = in.Add();
    r->set_row_number(static_cast<int64_t>(i) + 2);
    *r->mutable_cells() = rows[i].cells();
  }
  auto r = (*imp)->Apply(in);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const auto& x : r->results()) {
    EXPECT_EQ(x.outcome(), v1::IMPORT_OUTCOME_SKIPPED) << x.message();
    EXPECT_EQ(x.matched_on(0), "name");
  }
  // Columns chosen by field name, headers as field names; a bad column is named
  req.add_columns("display_name");
  req.add_columns("phone");
  req.set_field_names(true);
  chunks = Export(kManager, req, &st);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(chunks[0].columns(0), "display_name");
  EXPECT_EQ(chunks.back().total_rows(), 3);
  req.add_columns("salary");
  Export(kManager, req, &st);
  EXPECT_EQ(FieldOf(st), "columns[2]");
}

TEST_F(BulkTest, AnImportSurvivesARestartAndEqualsAFreshRebuild) {
  std::vector<std::string> rows;
  for (int i = 0; i < 300; ++i) rows.push_back(absl::StrCat("客户", i, "|138", 10000000 + i % 250));
  auto r = Import(kRep, Options("客户名称|手机"), rows);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->counts().created(), 250);
  EXPECT_EQ(r->counts().skipped(), 50);
  Open();
  EXPECT_EQ(All(kRep).size(), 250u);
  auto live = h_->Checksum(Service::kCustomers);
  auto fresh = h_->RebuiltChecksum(Service::kCustomers);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(*live, *fresh);
}

}  // namespace
}  // namespace crm::customers
