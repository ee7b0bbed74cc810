#ifndef CRM_SERVICES_CUSTOMERS_CUSTOMERS_SERVICE_H_
#define CRM_SERVICES_CUSTOMERS_CUSTOMERS_SERVICE_H_

#include "crm/customers/v1/customers_service.grpc.pb.h"
#include "libs/server/runtime.h"
#include "services/customers/customer_engine.h"

namespace crm::customers {

// gRPC face of CustomerEngine: proto in, proto out, absl::Status -> grpc::Status. No rules.
class CustomersService final : public v1::CustomerService::CallbackService {
 public:
  // `engine` and `runtime` must outlive the service.
  CustomersService(CustomerEngine* engine, server::Runtime* runtime)
      : engine_(engine), runtime_(runtime) {}

  grpc::ServerUnaryReactor* CreateCustomer(grpc::CallbackServerContext* ctx,
                                           const v1::CreateCustomerRequest* req,
                                           v1::Customer* resp) override;
  grpc::ServerUnaryReactor* GetCustomer(grpc::CallbackServerContext* ctx,
                                        const v1::GetCustomerRequest* req,
                                        v1::Customer* resp) override;
  grpc::ServerUnaryReactor* UpdateCustomer(grpc::CallbackServerContext* ctx,
                                           const v1::UpdateCustomerRequest* req,
                                           v1::Customer* resp) override;
  grpc::ServerUnaryReactor* ListCustomers(grpc::CallbackServerContext* ctx,
                                          const v1::ListCustomersRequest* req,
                                          v1::ListCustomersResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteCustomer(grpc::CallbackServerContext* ctx,
                                           const v1::DeleteCustomerRequest* req,
                                           v1::Customer* resp) override;
  grpc::ServerUnaryReactor* UndeleteCustomer(grpc::CallbackServerContext* ctx,
                                             const v1::UndeleteCustomerRequest* req,
                                             v1::Customer* resp) override;
  grpc::ServerUnaryReactor* ListCustomerEvents(grpc::CallbackServerContext* ctx,
                                               const v1::ListCustomerEventsRequest* req,
                                               v1::ListCustomerEventsResponse* resp) override;

 private:
  template <typename Req, typename Resp, typename Fn>
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp, Fn fn);
  template <typename Req, typename Fn>
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* ctx, const Req* req, v1::Customer* resp,
                                  Fn fn);

  CustomerEngine* engine_;
  server::Runtime* runtime_;
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMERS_SERVICE_H_
