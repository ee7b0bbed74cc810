#include "libs/topics/default_pipeline.h"

namespace crm::topics::opportunities {

namespace v1 = crm::opportunities::v1;

const v1::Pipeline& DefaultPipeline() {
  static const auto* p = [] {
    auto* p = new v1::Pipeline;
    p->set_id("default");
    p->set_name("默认销售流程");
    struct S {
      const char *id, *name;
      int prob;
      v1::StageKind kind;
      int timeout;
    };
    for (const S& s : {S{"initial_contact", "初步接触", 10, v1::STAGE_KIND_OPEN, 0},
                       S{"needs_analysis", "需求分析", 30, v1::STAGE_KIND_OPEN, 5},
                       S{"proposal", "方案报价", 60, v1::STAGE_KIND_OPEN, 0},
                       S{"negotiation", "合同谈判", 80, v1::STAGE_KIND_OPEN, 0},
                       S{"won", "成交", 100, v1::STAGE_KIND_WON, 0}, S{"lost", "输单", 0, v1::STAGE_KIND_LOST, 0}}) {
      v1::Stage* st = p->add_stages();
      st->set_id(s.id);
      st->set_name(s.name);
      st->set_win_probability(s.prob);
      st->set_kind(s.kind);
      st->set_timeout_days(s.timeout);
    }
    return p;
  }();
  return *p;
}

}  // namespace crm::topics::opportunities
