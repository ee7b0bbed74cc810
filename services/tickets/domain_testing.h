#ifndef CRM_SERVICES_TICKETS_DOMAIN_TESTING_H_
#define CRM_SERVICES_TICKETS_DOMAIN_TESTING_H_

// Forms and workflows the tickets domain tests share (tests only).
#include <string>
#include <vector>

#include "crm/tickets/v1/tickets_events.pb.h"

namespace crm::tickets::testing {

inline v1::FormField Field(const std::string& key, v1::FieldType type, bool required = false) {
  v1::FormField f;
  f.set_key(key);
  f.set_label(key);
  f.set_type(type);
  f.set_required(required);
  return f;
}

// 售后维修: one field of every type.
inline v1::FormSchema RepairForm() {
  v1::FormSchema s;
  auto* serial = s.add_fields();
  *serial = Field("serial", v1::FIELD_TYPE_TEXT, true);
  serial->set_pattern("[A-Z]{2}\\d{6}");
  auto* desc = s.add_fields();
  *desc = Field("description", v1::FIELD_TYPE_LONG_TEXT, true);
  desc->set_min_length(5);
  desc->set_max_length(2000);
  auto* qty = s.add_fields();
  *qty = Field("quantity", v1::FIELD_TYPE_NUMBER);
  qty->set_scale(1);
  qty->set_has_min(true);
  qty->set_min(1);
  qty->set_has_max(true);
  qty->set_max(1000);
  auto* fee = s.add_fields();
  *fee = Field("fee", v1::FIELD_TYPE_MONEY);
  fee->set_currency("CNY");
  fee->set_has_min(true);
  fee->set_min(0);
  *s.add_fields() = Field("bought_on", v1::FIELD_TYPE_DATE);
  *s.add_fields() = Field("visit_at", v1::FIELD_TYPE_DATETIME);
  auto* kind = s.add_fields();
  *kind = Field("kind", v1::FIELD_TYPE_SINGLE_CHOICE, true);
  for (const char* k : {"hardware", "software"}) {
    auto* o = kind->add_options();
    o->set_key(k);
    o->set_label(k);
  }
  auto* parts = s.add_fields();
  *parts = Field("parts", v1::FIELD_TYPE_MULTI_CHOICE);
  parts->set_max_length(2);
  for (const char* k : {"screen", "battery", "board"}) {
    auto* o = parts->add_options();
    o->set_key(k);
    o->set_label(k);
  }
  *s.add_fields() = Field("engineer", v1::FIELD_TYPE_USER);
  *s.add_fields() = Field("customer", v1::FIELD_TYPE_CUSTOMER);
  *s.add_fields() = Field("photo", v1::FIELD_TYPE_URL);
  return s;
}

// A form with only the resolution (处理结果) the resolve transition requires.
inline v1::FormSchema ResolutionForm() {
  v1::FormSchema s;
  auto* f = s.add_fields();
  f->set_key("resolution");
  f->set_label("处理结果");
  f->set_type(v1::FIELD_TYPE_LONG_TEXT);
  return s;
}

// 新建 → 处理中 ⇄ 待客户反馈 → 已解决 → 已关闭 (managers close), 已解决 → 处理中 (reopen).
inline v1::Workflow ServiceFlow() {
  v1::Workflow w;
  auto state = [&](const char* id, const char* name, bool final = false, bool pauses = false) {
    auto* s = w.add_states();
    s->set_id(id);
    s->set_name(name);
    s->set_final(final);
    s->set_pauses_sla(pauses);
  };
  state("new", "新建");
  state("in_progress", "处理中");
  state("waiting", "待客户反馈", false, true);
  state("resolved", "已解决");
  state("closed", "已关闭", true);
  auto move = [&](const char* id, const char* from, const char* to, std::vector<std::string> roles = {},
                  std::vector<std::string> fields = {}) {
    auto* t = w.add_transitions();
    t->set_id(id);
    t->set_name(id);
    t->set_from(from);
    t->set_to(to);
    for (auto& r : roles) t->add_roles(r);
    for (auto& f : fields) t->add_required_fields(f);
  };
  move("start", "new", "in_progress");
  move("ask", "in_progress", "waiting");
  move("answered", "waiting", "in_progress");
  move("resolve", "in_progress", "resolved", {}, {"resolution"});
  move("reopen", "resolved", "in_progress");
  move("close", "resolved", "closed", {"manager", "admin"});
  w.set_initial_state("new");
  return w;
}

// 售后维修: the repair form plus the resolution, and the service flow.
inline v1::TicketTypeDefinition RepairDefinition() {
  v1::TicketTypeDefinition d;
  d.set_display_name("售后维修");
  *d.mutable_form() = RepairForm();
  *d.mutable_form()->add_fields() = ResolutionForm().fields(0);
  *d.mutable_workflow() = ServiceFlow();
  return d;
}

// Monday to Friday 09:00-12:00 and 13:30-18:00 (7.5 hours a day), China Standard Time.
inline v1::BusinessCalendar OfficeHours() {
  v1::BusinessCalendar c;
  for (int wd = 1; wd <= 5; ++wd) {
    auto* m = c.add_windows();
    m->set_weekday(wd);
    m->set_start_minute(9 * 60);
    m->set_end_minute(12 * 60);
    auto* a = c.add_windows();
    a->set_weekday(wd);
    a->set_start_minute(13 * 60 + 30);
    a->set_end_minute(18 * 60);
  }
  return c;
}

}  // namespace crm::tickets::testing

#endif  // CRM_SERVICES_TICKETS_DOMAIN_TESTING_H_
