#ifndef CRM_TOOLS_CRMCTL_COMMON_H_
#define CRM_TOOLS_CRMCTL_COMMON_H_

// What every crmctl verb uses to call and to report.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/grpcpp.h"

namespace crm::ctl {

// Where and as whom to call, and how to print.
struct Connection {
  std::string addr;
  std::string token;
  double timeout_s = 10;
  bool json = false;
};

// Prints "error: msg"; returns 2 (bad usage or a local error).
int Fail(const std::string& msg);
// Prints the gRPC code, message, field violations and error details; returns 1.
int RpcFail(const grpc::Status& s);
// A list's last line: "N of M", or "N (total not counted for this filter)" when the server
// answered total_size -1, and the next page's flag.
void PrintPageFooter(int shown, int total, const std::string& next_page_token);
// The whole file; NOT_FOUND naming it and the reason when it cannot be opened.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// `m` as indented JSON with the proto field names.
std::string Json(const google::protobuf::Message& m);
// RFC 3339, "" for an unset timestamp.
std::string Time(const google::protobuf::Timestamp& t);
// `m` on stdout: JSON, or one "field value" line per set field (nested messages indented,
// enums by name).
void Print(const google::protobuf::Message& m, bool json);

// "<collection>/<id>" from an id or a full name.
std::string Name(const std::string& collection, const std::string& id);
// A time flag: RFC 3339, or a day yyyy-MM-dd meaning its midnight in China Standard Time.
absl::StatusOr<google::protobuf::Timestamp> When(const std::string& flag, const std::string& text);

// A unary call of `Service`, printed (or handed back in *out); the exit code: 0, or 1 when the
// server refused (printed).
template <typename Service, typename Req, typename Resp>
int Call(const Connection& c, grpc::Status (Service::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
         const Req& req, Resp* out = nullptr) {
  auto stub = Service::NewStub(grpc::CreateChannel(c.addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + c.token);
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000)));
  Resp resp;
  grpc::Status s = ((*stub).*method)(&ctx, req, &resp);
  if (!s.ok()) return RpcFail(s);
  if (out != nullptr) {
    *out = std::move(resp);
  } else {
    Print(resp, c.json);
  }
  return 0;
}

// The verbs of some nouns, each with what it does with a connection.
class Verbs {
 public:
  using Run = std::function<int(const Connection&)>;
  // Adds verb `name` under `noun`; returns it for its flags.
  CLI::App* Add(CLI::App* noun, const std::string& name, const std::string& help, Run run) {
    CLI::App* cmd = noun->add_subcommand(name, help);
    verbs_.emplace_back(cmd, std::move(run));
    return cmd;
  }
  // Whether one of them was parsed.
  bool Parsed() const {
    for (const auto& v : verbs_) {
      if (v.first->parsed()) return true;
    }
    return false;
  }
  // Runs the parsed one: its exit code, or 2 when none was parsed.
  int RunParsed(const Connection& c) const {
    for (const auto& [cmd, run] : verbs_) {
      if (cmd->parsed()) return run(c);
    }
    return Fail("give a verb (see --help)");
  }

 private:
  std::vector<std::pair<CLI::App*, Run>> verbs_;
};

// A destructive verb's flags: --yes does it, --dry-run prints the request it would send.
void AddConfirmFlags(CLI::App* cmd, bool* yes, bool* dry_run);
// The guard before a destructive call: nullopt to go on; else the exit code, 0 after a dry
// run printed `method` and `req`, 2 after refusing without --yes (`refusal` says why it
// matters).
std::optional<int> Unconfirmed(bool yes, bool dry_run, absl::string_view method, const google::protobuf::Message& req,
                               absl::string_view refusal);

// --etag and --request-id of a write, into `etag` and `request_id`.
inline void AddWriteFlags(CLI::App* cmd, std::string* etag, std::string* request_id) {
  cmd->add_option("--etag", *etag, "Fail with ABORTED unless the resource is still at this etag");
  cmd->add_option("--request-id", *request_id, "Idempotency key: a retry with it applies once");
}

// An audit trail (any service's ListEventsResponse) as a table.
template <typename Events>
void PrintEvents(const Events& r) {
  std::printf("%-4s %-28s %-32s %-22s %s\n", "VER", "TIME", "EVENT", "ACTOR", "CAUSE");
  for (const auto& e : r.events()) {
    std::printf("%-4lld %-28s %-32s %-22s %s\n", static_cast<long long>(e.version()), Time(e.recorded_at()).c_str(),
                e.event_type().substr(e.event_type().rfind('.') + 1).c_str(),
                (e.actor().user_id() + "/" + e.actor().role()).c_str(), e.causation_id().c_str());
  }
}

}  // namespace crm::ctl

#endif  // CRM_TOOLS_CRMCTL_COMMON_H_
