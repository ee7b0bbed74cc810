#ifndef CRM_LIBS_SERVER_UNDECODABLE_H_
#define CRM_LIBS_SERVER_UNDECODABLE_H_

#include <memory>

#include "grpcpp/support/server_interceptor.h"

namespace crm::server {

// A server interceptor for requests gRPC could not decode (bytes that are no protobuf, a
// proto3 string field that is not UTF-8). gRPC 1.51's callback API answers those with
// UNIMPLEMENTED and an empty message (CallbackUnaryHandler::RunHandler, in
// grpcpp/impl/codegen/server_callback_handlers.h: it drops the decoding status), which reads
// as "no such method". This makes the answer INVALID_ARGUMENT, "the request is not a valid
// <request type> message: …", with a google.rpc.ErrorInfo of reason UNDECODABLE_REQUEST.
//
// How: the request arrives at the POST_RECV_MESSAGE hook as null exactly when decoding
// failed; the status is then replaced at PRE_SEND_STATUS. Only unary and server-streaming
// methods, whose request gRPC decodes before the handler runs, get an interceptor. The
// server must list this factory before the metrics one: send hooks run in list order, and
// metrics should count the code the client gets.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> UndecodableRequestInterceptorFactory();

}  // namespace crm::server

#endif  // CRM_LIBS_SERVER_UNDECODABLE_H_
