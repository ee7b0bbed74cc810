#!/usr/bin/env bash
# Starts crmd in the foreground for `make run`: creates the data folder and signing key on
# first start, mints an admin token and prints how to call the server.
set -euo pipefail
build=${1:-build} data=${2:-data} port=${3:-50051} metrics=${4:-9464} dashboard=${5:-8080}
mkdir -p "$data"
key="$data/signing.key"
# crmd creates the key on first start; create it here first so the token below can be minted.
if [ ! -f "$key" ]; then
  umask 077
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$key"
  echo >> "$key"
fi
# The log's seal key (Ed25519) lives apart from the data folder, as crmd requires: whoever can
# write the data files must not be able to make seals (README: Seals).
seal_dir="${data%/}-keys"
mkdir -p "$seal_dir" && chmod 700 "$seal_dir"
# 24 h: the longest lifetime crmd accepts by default (--max-token-lifetime).
token=$("$build/tools/crmctl" token --key-file "$key" --sub admin --role admin --ttl 24h)
cat <<MSG

  crmd: the CRM backbone on the embedded log (data in $data/)
  gRPC     127.0.0.1:$port   (health, reflection, crm.customers.v1: CustomerService, LeadService;
                             crm.opportunities.v1: OpportunityService, QuoteService, ContractService;
                             crm.tasks.v1: TaskService, AutomationService;
                             crm.tickets.v1: TicketTypeService, TicketService, SlaService;
                             crm.analytics.v1: AnalyticsService)
  metrics  http://127.0.0.1:$metrics/metrics
  dashboard (数据看板, with the admin token below; the token stays in the page's fragment):
           http://127.0.0.1:$dashboard/#token=$token

  Try it from another terminal:
    export CRM_ADDR=127.0.0.1:$port
    export CRM_TOKEN=\$($build/tools/crmctl token --key-file $key --sub u1 --role rep --team east)
    $build/tools/crmctl customers create --display-name 上海星辰科技有限公司 --phone 13812345678
    $build/tools/crmctl customers list
    $build/tools/crmctl opportunities create --customer <id from above> --title 智能仓储系统 --amount 120000
    $build/tools/crmctl opportunities list
    $build/tools/crmctl leads create --contact-name 王经理 --company 深圳某科技 --phone 13800138000
    $build/tools/crmctl tasks list --view open     # the new-lead rule's task: call within 24 hours
    $build/tools/crmctl automation list
    $build/tools/crmctl tickets list                # 工单; with the admin token below an admin defines types:
    $build/tools/crmctl --token <admin token> ticket-types create --id repair --file examples/tickets/repair.json
    $build/tools/crmctl --token <admin token> reports funnel --from \$(date -d '-30 days' +%F) --to \$(date -d tomorrow +%F)
    $build/tools/crmctl --token <admin token> reports team --from \$(date -d '-30 days' +%F) --to \$(date -d tomorrow +%F) --csv team.csv --table reps
  An admin token valid for 24 hours (mint another with crmctl token --role admin):
    $token

  The log is sealed with $seal_dir/seal.key; check it with
    $build/tools/crmctl verify --data-dir $data --seal-key <(openssl pkey -in $seal_dir/seal.key -pubout)
  (crmd stopped, or beside it).

  Stop with Ctrl-C (SIGTERM drains calls in flight).

MSG
exec "$build/services/crmd/crmd" --data-dir "$data" --key-file "$key" \
  --seal-key "$seal_dir/seal.key" --create-seal-key \
  --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics" --dashboard-listen "127.0.0.1:$dashboard"
