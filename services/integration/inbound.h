#ifndef CRM_SERVICES_INTEGRATION_INBOUND_H_
#define CRM_SERVICES_INTEGRATION_INBOUND_H_

// Commands from ERP and OA systems (issue 8): CloudEvents JSON on crm.inbound.v1, mapped to
// the services' commands, idempotent by the CloudEvent id; what cannot be applied goes to
// crm.inbound.v1.dlq with the reason in its headers. The README (Integrating ERP and OA
// systems) lists the types.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "crm/opportunities/v1/opportunities_service.pb.h"
#include "libs/eventlog/log.h"
#include "rocksdb/db.h"
#include "libs/topics/topics.h"

namespace crm::integration {

inline constexpr const char* kInboundTopic = topics::kInbound;

// Inbound event types and the command each becomes.
inline constexpr char kErpCustomerUpserted[] = "com.erp.customer.upserted";  // Create/UpdateCustomer
inline constexpr char kErpOrderCreated[] = "com.erp.order.created";          // CreateFollowUp
inline constexpr char kErpPaymentReceived[] = "com.erp.payment.received";    // RecordPayment
inline constexpr char kOaApprovalCompleted[] = "com.oa.approval.completed";  // Approve/RejectContract

// One inbound event as a command of a service. request_id is "inbound:<id>" on every request,
// so a command repeated after a crash is answered with its first result by the service.
struct InboundCommand {
  std::string id;      // the CloudEvent id
  std::string type;    // the CloudEvent type
  std::string source;  // the CloudEvent source, e.g. "/erp/sap"
  // For payments: the currency the amount was given in (the contract's must match).
  std::string currency;
  std::variant<customers::v1::CreateCustomerRequest, customers::v1::UpdateCustomerRequest,
               customers::v1::CreateFollowUpRequest, opportunities::v1::RecordPaymentRequest,
               opportunities::v1::ApproveContractRequest, opportunities::v1::RejectContractRequest>
      request;
};

// Reads one record of crm.inbound.v1 as a CloudEvent, in structured mode (a JSON object with
// the attributes and `data`) or binary mode (ce_* headers, the value being `data`), and maps
// it to its command. INVALID_ARGUMENT naming the field ("id", "type", "data.amount", ...)
// when it is not a CloudEvent 1.0 of a known type with valid data.
absl::StatusOr<InboundCommand> ParseInbound(const eventlog::Record& record);

// Carries commands to the services. Execute returns the service's answer: OK, a permanent
// refusal (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, PERMISSION_DENIED,
// ALREADY_EXISTS, ABORTED, OUT_OF_RANGE), or a transient failure (anything else), which is
// retried and never dead-lettered.
class CommandSink {
 public:
  virtual ~CommandSink() = default;
  virtual absl::Status Execute(const InboundCommand& command) = 0;
};

// Whether `s` is a refusal a retry cannot change.
bool IsPermanent(const absl::Status& s);

// Applies crm.inbound.v1 through a CommandSink, in offset order per partition.
//
// Nothing is lost: a record's position is stored only after its command was answered or its
// dead letter is durable; a transient failure halts the partition at the record and retries
// it. Nothing is applied twice: ids already seen are skipped (a producer's retry), and a
// command repeated after a crash carries the same request_id. Nothing is dead-lettered twice:
// dead letters name their record (crm_position), and after a crash the letters past the
// stored ends are read back and their records taken as done. Thread-safe.
class InboundProcessor {
 public:
  struct Options {
    // Folder of the processor's RocksDB store. Required.
    std::string dir;
    // Default: kInboundTopic, and "<topic>.dlq".
    std::string topic;
    std::string dlq_topic;
    // Partitions of the topics when this creates them. Default: 8.
    int32_t partitions = topics::kPartitions;
    // Records per poll. Default: 256.
    size_t batch_records = 256;
    // Pause before retrying a transient failure. Default: 1 s.
    absl::Duration retry_after = absl::Seconds(1);
  };
  struct Stats {
    int64_t applied = 0;
    int64_t duplicates = 0;
    int64_t dead_lettered = 0;
  };

  // Creates the topics when missing, claims the dead-letter topic, recovers and starts the
  // thread. `sink` must outlive the processor.
  static absl::StatusOr<std::unique_ptr<InboundProcessor>> Start(eventlog::Log* log, CommandSink* sink, Options options);
  ~InboundProcessor();

  Stats stats() const;
  // OK while processing; else the last transient failure being retried.
  absl::Status status() const;
  // Blocks until every record present at the call is done, or `timeout`.
  absl::Status WaitCaughtUp(absl::Duration timeout) const;

 private:
  InboundProcessor(eventlog::Log* log, CommandSink* sink, Options o)
      : log_(log), sink_(sink), options_(std::move(o)) {}
  absl::Status Recover();
  void Run();
  absl::Status Process();
  // Handles one record: OK when done (applied, duplicate or dead-lettered), else the
  // transient failure that must halt its partition.
  absl::Status Handle(const eventlog::Record& r);
  absl::Status DeadLetter(const eventlog::Record& r, const absl::Status& why);
  absl::Status Done(const eventlog::Record& r, const std::string& id, const std::string& outcome);

  eventlog::Log* log_;
  CommandSink* sink_;
  const Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<eventlog::Writer> dlq_;
  int32_t partitions_ = 0;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::map<int32_t, int64_t> next_ ABSL_GUARDED_BY(mu_);      // inbound partition -> next offset
  std::map<int32_t, int64_t> dlq_ends_ ABSL_GUARDED_BY(mu_);  // dead-letter partition -> end read back
  std::thread thread_;
};

}  // namespace crm::integration

#endif  // CRM_SERVICES_INTEGRATION_INBOUND_H_
