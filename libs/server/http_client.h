#ifndef CRM_LIBS_SERVER_HTTP_CLIENT_H_
#define CRM_LIBS_SERVER_HTTP_CLIENT_H_

// A plain-HTTP GET for reading another process's /metrics (crm-bench against a crmd it did not
// start). civetweb's client bounds only the wait for the response head and libcurl is not in
// the runtime image, hence these few lines: every step waits until one deadline at most.
#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace crm::server {

// The body of `GET <path>` from http://<address> (host:port, "[v6]:port"), sent as HTTP/1.0
// with Connection: close. INVALID_ARGUMENT for a bad address or path; UNAVAILABLE when the
// host cannot be resolved or connected to, or answers with anything but 200 (its status line
// named); DEADLINE_EXCEEDED when the answer is not complete by `deadline` (name resolution
// takes the resolver's own timeouts); RESOURCE_EXHAUSTED when it is larger than `max_bytes`.
absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path, absl::Time deadline,
                                    size_t max_bytes = 16 << 20);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_HTTP_CLIENT_H_
