#ifndef CRM_TOOLS_BENCH_PEER_H_
#define CRM_TOOLS_BENCH_PEER_H_

// The peer of the durable create: PostgreSQL (Debian's, found under /usr/lib/postgresql) doing
// the same create-customer work, driven by pgbench at the same concurrency.
//
// A throwaway cluster is initialised under the bench's folder and started as our child (as
// the `postgres` user when we are root), listening on a Unix socket only, with its defaults
// (fsync on, synchronous_commit on) but for max_connections. Each transaction is one statement,
// one round trip and one commit, the strongest form of the work for the peer:
//   the projection row: customers (id uuid primary key, phone text UNIQUE, display_name, owner,
//     version, state bytea of 200 B)
//   the event row: events (event_id uuid primary key, aggregate_id, version, UNIQUE
//     (aggregate_id, version), event_type, payload bytea of 300 B, recorded_at)
// with a sequence numbering the phones, so every one is new.
#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/bench_common.h"

namespace crm::bench {

class PostgresPeer {
 public:
  // `pg_bin` empty: the newest /usr/lib/postgresql/*/bin.
  static absl::StatusOr<std::unique_ptr<PostgresPeer>> Start(const std::string& base, std::string pg_bin);
  // Stops the cluster (immediate) and removes its folder.
  ~PostgresPeer();

  // pgbench with `clients` connections (2 threads) for `warmup` unmeasured, then `duration`
  // with every transaction's latency logged. CPU is pgbench's plus the server's (the
  // postmaster and the backends it reaped); RSS is not comparable across processes and is 0.
  absl::StatusOr<Result> Run(int clients, absl::Duration duration, absl::Duration warmup);

 private:
  PostgresPeer() = default;
  absl::StatusOr<std::string> Psql(const std::string& sql);

  std::string bin_, dir_, socket_dir_;
  int port_ = 0;
  pid_t postmaster_ = -1;
};

}  // namespace crm::bench

#endif  // CRM_TOOLS_BENCH_PEER_H_
