#include "libs/server/http_server.h"

#include <civetweb.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace crm::server {

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string UrlDecode(absl::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2])));
      i += 2;
      continue;
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::vector<std::string> CivetOptions(const std::string& listen, const HttpLimits& limits) {
  const std::string timeout = absl::StrCat(limits.request_timeout_ms);
  return {"listening_ports", listen, "num_threads", absl::StrCat(limits.threads), "request_timeout_ms", timeout,
          "keep_alive_timeout_ms", timeout, "enable_keep_alive", "yes"};
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen, Handler handler,
                                                              HttpLimits limits) {
  mg_init_library(0);
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(handler)));
  // civetweb takes "host:port"; port 0 is refused by some versions, so it is passed through
  // and the bound port read back.
  const std::vector<std::string> strings = CivetOptions(listen, limits);
  std::vector<const char*> options;
  for (const std::string& o : strings) options.push_back(o.c_str());
  options.push_back(nullptr);
  mg_callbacks callbacks{};
  s->ctx_ = mg_start(&callbacks, nullptr, options.data());
  if (s->ctx_ == nullptr) return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", listen));
  mg_set_request_handler(s->ctx_, "/", &HttpServer::Serve, s.get());
  mg_server_port ports[4];
  const int n = mg_get_server_ports(s->ctx_, 4, ports);
  if (n > 0) s->port_ = ports[0].port;
  return s;
}

HttpServer::~HttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int HttpServer::Serve(::mg_connection* conn, void* self) {
  const mg_request_info* info = mg_get_request_info(conn);
  HttpRequest req;
  req.method = info->request_method != nullptr ? info->request_method : "";
  req.path = UrlDecode(info->local_uri != nullptr ? info->local_uri : "/", false);
  if (info->query_string != nullptr) {
    for (absl::string_view pair : absl::StrSplit(info->query_string, '&', absl::SkipEmpty())) {
      const size_t eq = pair.find('=');
      req.query[UrlDecode(pair.substr(0, eq), true)] =
          eq == absl::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1), true);
    }
  }
  if (const char* a = mg_get_header(conn, "Authorization")) req.authorization = a;
  HttpResponse resp;
  if (req.method != "GET" && req.method != "HEAD") {
    resp.status = 405;
    resp.body = "only GET\n";
    resp.headers["Allow"] = "GET, HEAD";
  } else {
    resp = static_cast<HttpServer*>(self)->handler_(req);
  }
  std::string head = absl::StrCat("HTTP/1.1 ", resp.status, " ", mg_get_response_code_text(conn, resp.status),
                                  "\r\nContent-Type: ", resp.content_type, "\r\nContent-Length: ", resp.body.size(),
                                  "\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n");
  for (const auto& [k, v] : resp.headers) absl::StrAppend(&head, k, ": ", v, "\r\n");
  head += "\r\n";
  mg_write(conn, head.data(), head.size());
  if (req.method != "HEAD") mg_write(conn, resp.body.data(), resp.body.size());
  return resp.status;
}

}  // namespace crm::server
