#ifndef CRM_LIBS_TOPICS_DEFAULT_PIPELINE_H_
#define CRM_LIBS_TOPICS_DEFAULT_PIPELINE_H_

// The sales process (销售流程) in force until an admin records pipelines: part of the
// opportunities topic's contract (until a PipelinesSet is recorded, the stage ids in its events
// are this pipeline's), so readers of the topic (analytics) name its stages as the service does.
#include "crm/opportunities/v1/opportunities_events.pb.h"

namespace crm::topics::opportunities {

// id "default": 初步接触 → 需求分析 (5 days without an update times out) → 方案报价 →
// 合同谈判 → 成交 (won) / 输单 (lost).
const crm::opportunities::v1::Pipeline& DefaultPipeline();

}  // namespace crm::topics::opportunities

#endif  // CRM_LIBS_TOPICS_DEFAULT_PIPELINE_H_
