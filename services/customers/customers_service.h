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
  grpc::ServerUnaryReactor* AddContact(grpc::CallbackServerContext* ctx, const v1::AddContactRequest* req,
                                       v1::Customer* resp) override;
  grpc::ServerUnaryReactor* UpdateContact(grpc::CallbackServerContext* ctx,
                                          const v1::UpdateContactRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* RemoveContact(grpc::CallbackServerContext* ctx,
                                          const v1::RemoveContactRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* CreateFollowUp(grpc::CallbackServerContext* ctx,
                                           const v1::CreateFollowUpRequest* req, v1::FollowUp* resp) override;
  grpc::ServerUnaryReactor* ListFollowUps(grpc::CallbackServerContext* ctx,
                                          const v1::ListFollowUpsRequest* req,
                                          v1::ListFollowUpsResponse* resp) override;
  grpc::ServerUnaryReactor* ReleaseCustomer(grpc::CallbackServerContext* ctx,
                                            const v1::ReleaseCustomerRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* ClaimCustomer(grpc::CallbackServerContext* ctx,
                                          const v1::ClaimCustomerRequest* req, v1::Customer* resp) override;
  grpc::ServerUnaryReactor* GetPoolPolicy(grpc::CallbackServerContext* ctx,
                                          const v1::GetPoolPolicyRequest* req, v1::PoolPolicy* resp) override;
  grpc::ServerUnaryReactor* UpdatePoolPolicy(grpc::CallbackServerContext* ctx,
                                             const v1::UpdatePoolPolicyRequest* req,
                                             v1::PoolPolicy* resp) override;
  grpc::ServerUnaryReactor* ListIndustries(grpc::CallbackServerContext* ctx,
                                           const v1::ListIndustriesRequest* req,
                                           v1::ListIndustriesResponse* resp) override;
  grpc::ServerUnaryReactor* SetIndustries(grpc::CallbackServerContext* ctx,
                                          const v1::SetIndustriesRequest* req,
                                          v1::ListIndustriesResponse* resp) override;

 private:
  template <typename Req, typename Resp, typename Fn>
  grpc::ServerUnaryReactor* Read(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp, Fn fn);
  template <typename Req, typename Resp, typename Fn>
  grpc::ServerUnaryReactor* Write(grpc::CallbackServerContext* ctx, const Req* req, Resp* resp, Fn fn);

  CustomerEngine* engine_;
  server::Runtime* runtime_;
};

}  // namespace crm::customers

#endif  // CRM_SERVICES_CUSTOMERS_CUSTOMERS_SERVICE_H_
