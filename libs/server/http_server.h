#ifndef CRM_LIBS_SERVER_HTTP_SERVER_H_
#define CRM_LIBS_SERVER_HTTP_SERVER_H_

// A small HTTP/1.1 server for GET requests (the analytics dashboard and its JSON/CSV API), on
// Debian's civetweb. The handler runs on the server's worker threads and must be thread-safe.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mg_context;
struct mg_connection;

namespace crm::server {

struct HttpRequest {
  std::string method;
  std::string path;                          // decoded, without the query
  std::map<std::string, std::string> query;  // decoded; the last of a repeated name wins
  std::string authorization;                 // the Authorization header, "" when absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> headers;  // extra ones, e.g. Content-Disposition
};

// The civetweb options every HTTP face of a process runs with (the dashboard, /metrics): it
// serves one connection per worker thread, so a client that opens connections and sends its
// request slowly (slowloris) holds a worker each. Four such connections held the dashboard's
// four workers, /healthz included, for about 25 s each (30 s request timeout). Now a request
// has `request_timeout` in all to arrive, and there are `threads` workers.
struct HttpLimits {
  // Workers, each serving one connection at a time. Default: 32.
  int threads = 32;
  // Time for a request's head to arrive, in all, and for an idle kept-alive connection to send
  // its next request. Default: 5 s.
  int request_timeout_ms = 5000;
};
// civetweb's option list for `listen` under `limits`, as name, value, name, value, ...
std::vector<std::string> CivetOptions(const std::string& listen, const HttpLimits& limits);

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Listens on `listen` ("host:port"; port 0 picks one).
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen, Handler handler,
                                                           HttpLimits limits = {});
  // Stops accepting and waits for the requests in progress.
  ~HttpServer();

  int port() const { return port_; }

 private:
  explicit HttpServer(Handler h) : handler_(std::move(h)) {}
  static int Serve(::mg_connection* conn, void* self);

  Handler handler_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// "%41b" -> "Ab", '+' -> ' ' (query strings).
std::string UrlDecode(absl::string_view s, bool plus_is_space);

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_HTTP_SERVER_H_
