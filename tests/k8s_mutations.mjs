// Breaks a valid render in one way at a time and expects k8s/validate.mjs to refuse each with
// the problem named, so the manifest check cannot pass vacuously.
// node tests/k8s_mutations.mjs MODULES_DIR VALIDATE_MJS RENDERED.yaml -- VALIDATE_OPTIONS...
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";

const [modules, validate, rendered, sep, ...validateOpts] = process.argv.slice(2);
if (sep !== "--") throw new Error("usage: MODULES VALIDATE RENDERED -- OPTIONS...");
const YAML = await import(pathToFileURL(path.join(modules, "node_modules/yaml/dist/index.js")).href);
const original = YAML.parseAllDocuments(fs.readFileSync(rendered, "utf8")).map((d) => d.toJS()).filter(Boolean);

const find = (docs, kind, name) => {
  const o = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not in the render`);
  return o;
};
const container = (docs, name) => find(docs, "StatefulSet", name).spec.template.spec.containers[0];

const MUTATIONS = [
  ["a second writer", "must run exactly 1 replica", (d) => { find(d, "StatefulSet", "crm-customers").spec.replicas = 2; }],
  ["replicas not a number", "schema: data/spec/replicas must be integer", (d) => { find(d, "StatefulSet", "crm-tickets").spec.replicas = "two"; }],
  ["no image", "container crm-tasks: no image", (d) => { delete container(d, "crm-tasks").image; }],
  ["no readiness probe", "readinessProbe must use gRPC health", (d) => { delete container(d, "crm-analytics").readinessProbe; }],
  ["probe on a port not served", "livenessProbe port 50052", (d) => { container(d, "crm-tickets").livenessProbe.grpc.port = 50052; }],
  ["running as root", "pod must run as non-root", (d) => { find(d, "StatefulSet", "crm-opportunities").spec.template.spec.securityContext.runAsNonRoot = false; }],
  ["a missing ConfigMap", "ConfigMap crm-config missing", (d) => { find(d, "ConfigMap", "crm-config").metadata.name = "crm-settings"; }],
  ["a Service port naming no container port", "targetPort grpcx", (d) => { find(d, "Service", "crm-opportunities").spec.ports[0].targetPort = "grpcx"; }],
  ["a topic with other partitions", "partitions 4, but the services create and expect", (d) => { find(d, "KafkaTopic", "crm-customers-events-v1").spec.partitions = 4; }],
  ["a topic not kept forever", "kept forever", (d) => { find(d, "KafkaTopic", "crm-tasks-events-v1").spec.config["retention.ms"] = 604800000; }],
  ["more topic replicas than brokers", "replicas 5 with 3 brokers", (d) => { find(d, "KafkaTopic", "crm-tickets-events-v1").spec.replicas = 5; }],
  ["a writer without its transactional id", "may not use transactional.id", (d) => {
    const u = find(d, "KafkaUser", "crm-customers");
    u.spec.authorization.acls = u.spec.authorization.acls.filter((a) => a.resource.type !== "transactionalId");
  }],
  ["a Strimzi field of the wrong type", "schema:", (d) => { find(d, "KafkaNodePool", "dual-role").spec.roles = "broker"; }],
  ["an unknown kind", "kind Servic is not in v1", (d) => { find(d, "Service", "crm-tasks").kind = "Servic"; }],
];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8s-mutations-"));
let failed = 0;
for (const [what, expected, mutate] of MUTATIONS) {
  const docs = structuredClone(original);
  mutate(docs);
  const file = path.join(dir, "mutated.yaml");
  fs.writeFileSync(file, docs.map((o) => YAML.stringify(o)).join("---\n"));
  const r = spawnSync(process.execPath, [validate, "--modules", modules, ...validateOpts, file], { encoding: "utf8" });
  const ok = r.status === 1 && r.stderr.includes(expected);
  console.log(`${ok ? "refused" : "NOT REFUSED"}: ${what}${ok ? "" : ` (exit ${r.status}, wanted "${expected}")\n${r.stderr}`}`);
  if (!ok) failed++;
}
fs.rmSync(dir, { recursive: true, force: true });
if (failed) {
  console.error(`${failed} broken render(s) were not refused`);
  process.exit(1);
}
