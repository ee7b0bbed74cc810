#ifndef CRM_SERVICES_OPPORTUNITIES_DEFAULT_PIPELINE_H_
#define CRM_SERVICES_OPPORTUNITIES_DEFAULT_PIPELINE_H_

// The sales process (销售流程) in force until an admin records pipelines: part of the
// opportunities topic's published schema, so readers of the topic (analytics) name its stages
// as the service does. Its own library, with only the protos, for those readers.
#include "crm/opportunities/v1/opportunities_events.pb.h"

namespace crm::opportunities {

// id "default": 初步接触 → 需求分析 (5 days without an update times out) → 方案报价 →
// 合同谈判 → 成交 (won) / 输单 (lost).
const v1::Pipeline& DefaultPipeline();

}  // namespace crm::opportunities

#endif  // CRM_SERVICES_OPPORTUNITIES_DEFAULT_PIPELINE_H_
