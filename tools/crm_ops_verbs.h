#ifndef CRM_TOOLS_CRM_OPS_VERBS_H_
#define CRM_TOOLS_CRM_OPS_VERBS_H_

// The operator verbs that read the log and fold its events with the services' projections.
// They live in crm-ops, which links the service engines; crmctl lists them too and hands such
// a command line, unchanged, to crm-ops (tools/crmctl_exec.h), so it carries no engine itself.
namespace crm::ctl {

struct OpsVerb {
  const char* name;
  // The verb's one-line help, shown by crm-ops and by crmctl.
  const char* help;
};

inline constexpr OpsVerb kOpsVerbs[] = {
    {"rebuild", "Rebuild the projections from the log (crmd must be stopped)"},
    {"tail", "Print a topic's records: -o json as CloudEvents JSON lines, else one line each"},
    {"lag", "How many records each projection is behind the log"},
    {"verify",
     "Check the log's files, every aggregate's hash chain and versions, every record against the latest seal "
     "(--seal-key), that no projection holds events the log lost; with --projections (crmd stopped) every "
     "projection against a fresh rebuild. Exit 4 when anything is wrong"},
};

// The program that runs kOpsVerbs, installed beside crmctl.
inline constexpr char kOpsProgram[] = "crm-ops";

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRM_OPS_VERBS_H_
