#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "crm/customers/v1/customers_service.pb.h"
#include "libs/common/clock.h"
#include "libs/eventlog/log.h"
#include "libs/projection/projection_db.h"
#include "services/customers/customer.h"

namespace crm::customers {

inline constexpr char kTopic[] = "crm.customers.events.v1";
inline constexpr int32_t kPartitions = 8;
// Version of the projection code (rows and how events fold into them). Bump it with any change
// to ApplyRecord's output: OpenProjections then rebuilds beside the live copy and swaps.
inline constexpr int64_t kProjectionVersion = 1;

// The customers service without the gRPC server around it (STYLE: userver samples): the
// write path of DESIGN §3 and the projections of §4. Thread-safe. Writes complete through a
// callback on the log writer's thread; reads are synchronous.
class CustomerEngine {
 public:
  struct Options {
    // Topic of the customers' events. Default: crm.customers.events.v1.
    std::string topic = kTopic;
    // Partitions when the topic has to be created. Default: 8.
    int32_t partitions = kPartitions;
    // "now" for occurred_at, recorded_at and customer numbers. Required.
    Clock* clock = nullptr;
    // Customer numbers use the date in this zone. Default: UTC+8 (China).
    absl::TimeZone zone = absl::FixedTimeZone(8 * 3600);
    // Tenant written into every envelope. Default: "default".
    std::string tenant = "default";
    // Called with the time each append took to become durable. Default: none.
    std::function<void(absl::Duration)> observe_append;
  };

  // Creates the topic if needed, catches the projections up with the log and becomes the
  // topic's single writer. `log` and `db` must outlive the engine.
  static absl::StatusOr<std::unique_ptr<CustomerEngine>> Open(eventlog::Log* log,
                                                             projection::ProjectionDb* db,
                                                             Options options);
  ~CustomerEngine();

  using Done = absl::AnyInvocable<void(absl::StatusOr<v1::Customer>)>;
  void Create(const Caller& caller, const v1::CreateCustomerRequest& req, Done done);
  void Update(const Caller& caller, const v1::UpdateCustomerRequest& req, Done done);
  void Delete(const Caller& caller, const v1::DeleteCustomerRequest& req, Done done);
  void Undelete(const Caller& caller, const v1::UndeleteCustomerRequest& req, Done done);

  // Calls `done` once the projections reached `token` (a min_consistency_token; empty is
  // reached at once), with INVALID_ARGUMENT naming `field` for a malformed token or
  // DEADLINE_EXCEEDED at `deadline`. Does not block; see ProjectionDb::NotifyWhenReached.
  void AfterToken(const std::string& token, absl::string_view field, absl::Time deadline,
                  absl::AnyInvocable<void(absl::Status)> done);

  // Reads. Each first waits (blocking) for its min_consistency_token; servers call
  // AfterToken first so that the wait does not hold a thread.
  absl::StatusOr<v1::Customer> Get(const Caller& caller, const v1::GetCustomerRequest& req,
                                   absl::Time deadline);
  absl::StatusOr<v1::ListCustomersResponse> List(const Caller& caller,
                                                 const v1::ListCustomersRequest& req,
                                                 absl::Time deadline);
  absl::StatusOr<v1::ListCustomerEventsResponse> History(const Caller& caller,
                                                         const v1::ListCustomerEventsRequest& req,
                                                         absl::Time deadline);

  // Applies one record of the topic to the projections (catch-up, rebuild and live writes).
  // DATA_LOSS on a version gap or a broken hash chain.
  static absl::Status ApplyRecord(projection::ProjectionDb& db, const eventlog::Record& record,
                                  projection::Batch& batch);

  // Builds the projections afresh from offset 0 into `path` (which must not exist), WAL off,
  // flushed at the end. Returns the number of events applied.
  static absl::StatusOr<int64_t> Rebuild(eventlog::Log& log, const std::string& topic,
                                         const std::string& path);

  // Opens the projections at `path` for `options.topic`. When they were built by another
  // kProjectionVersion, rebuilds them from the log beside the live copy, swaps the new copy
  // in, and sets *rebuilt to the events applied (0 otherwise). Creates the topic if needed.
  static absl::StatusOr<std::unique_ptr<projection::ProjectionDb>> OpenProjections(
      eventlog::Log& log, const std::string& path, const Options& options, int64_t* rebuilt);

  // Rebuilds the projections of `topic` beside `live_path` and swaps the new copy in; the
  // service must not be running on `live_path`. Returns the number of events applied.
  static absl::StatusOr<int64_t> RebuildAndSwap(eventlog::Log& log, const std::string& topic,
                                                const std::string& live_path);

  // Order-independent checksum of every projection row (for "equals a fresh rebuild").
  static absl::StatusOr<std::string> Checksum(projection::ProjectionDb& db);

 private:
  CustomerEngine(eventlog::Log* log, projection::ProjectionDb* db, Options o)
      : log_(log), db_(db), options_(std::move(o)) {}

  struct Reservation {
    std::vector<std::string> keys;  // dedupe keys and request id held while in flight
  };

  // Runs `fn` for `id` after every earlier command for `id` finished (per-aggregate order).
  void Serialize(const std::string& id, absl::AnyInvocable<void()> fn);
  void Release(const std::string& id);

  // Checks the phone/email/request-id keys against the indexes and in-flight writes and holds
  // them; ALREADY_EXISTS naming the existing customer, ABORTED for a request in flight.
  absl::Status Reserve(const std::string& id, const std::string& phone, const std::string& email,
                       const std::string& request_id, Reservation* out);
  void Unreserve(const Reservation& r);

  // Runs `cmd` on customer `id` after the commands before it: load, Decide, reserve the
  // dedupe keys, Write. `done` gets the customer or the first error.
  template <typename Command>
  void Execute(const Caller& caller, const std::string& id, Command cmd,
               const std::string& request_id, Done done);

  absl::StatusOr<absl::optional<CustomerState>> Load(const std::string& id);
  absl::StatusOr<std::string> AllocateNumber();
  void Write(const Caller& caller, const std::string& id, const CustomerState* state,
             std::vector<CustomerEvent> events, const std::string& request_id, Reservation res,
             Done done);
  // Applies the events this engine just appended and returns the customer with its token.
  absl::StatusOr<v1::Customer> ApplyOwnWrite(const std::string& id,
                                             const eventlog::Appended& appended,
                                             const std::vector<std::string>& values);
  v1::Customer ToApi(const CustomerState& s) const;
  absl::Status WaitToken(const std::string& token, absl::string_view field, absl::Time deadline);

  eventlog::Log* log_;
  projection::ProjectionDb* db_;
  const Options options_;
  std::unique_ptr<eventlog::Writer> writer_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::deque<absl::AnyInvocable<void()>>> queues_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> reserved_ ABSL_GUARDED_BY(mu_);  // key -> customer id
  std::map<std::string, int64_t> number_seq_ ABSL_GUARDED_BY(mu_);    // yyyymmdd -> last seq
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMER_ENGINE_H_
