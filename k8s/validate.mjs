// Checks a rendered manifest set (`kubectl kustomize k8s/overlays/<env>`) offline:
//  1. every object against its schema: Kubernetes (npm kubernetes-models), Strimzi
//     (@kubernetes-models/strimzi-kafka-operator) and the Prometheus Operator
//     (@kubernetes-models/prometheus-operator); an unknown apiVersion/kind is an error;
//  2. what a schema cannot see: references between objects (Services, Secrets, ConfigMaps,
//     ports by name, selectors that select something, KafkaUsers and KafkaTopics of a Kafka),
//     probes and resources on every container, the restricted pod security profile, single
//     writers, and the topics' replication, retention and partition count.
//
// node k8s/validate.mjs --modules DIR [--namespace NS] [--replicas N --min-isr M]
//      [--partitions P] [--external-secret NAME]... [--require-tag] FILE
// Prints every problem found and exits 1 when there is one, 2 on bad usage.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

function usage(msg) {
  console.error(`validate.mjs: ${msg}`);
  process.exit(2);
}

const opts = { external: new Set(), requireTag: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
  if (a === "--modules") opts.modules = value();
  else if (a === "--namespace") opts.namespace = value();
  else if (a === "--replicas") opts.replicas = Number(value());
  else if (a === "--min-isr") opts.minIsr = Number(value());
  else if (a === "--partitions") opts.partitions = Number(value());
  else if (a === "--external-secret") opts.external.add(value());
  else if (a === "--require-tag") opts.requireTag = true;
  else if (a.startsWith("--")) usage(`unknown option ${a}`);
  else opts.file = a;
}
if (!opts.modules || !opts.file) usage("usage: --modules DIR [options] FILE");

const mod = (rel) => import(pathToFileURL(path.join(opts.modules, "node_modules", rel)).href);
const { parseAllDocuments } = await mod("yaml/dist/index.js");

// apiVersion -> the module of its models.
const MODELS = {
  v1: "kubernetes-models/v1/index.js",
  "apps/v1": "kubernetes-models/apps/v1/index.js",
  "policy/v1": "kubernetes-models/policy/v1/index.js",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1/index.js",
  "kafka.strimzi.io/v1beta2": "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2/index.js",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js",
};
const CLUSTER_SCOPED = new Set(["Namespace"]);

const problems = [];
const docs = [];
for (const d of parseAllDocuments(fs.readFileSync(opts.file, "utf8"))) {
  if (d.errors.length) problems.push(`YAML: ${d.errors[0].message}`);
  const obj = d.toJS();
  if (!obj) continue;
  // Secret data is base64 the API server decodes ignoring line breaks (kustomize folds it).
  if (obj.kind === "Secret") {
    for (const k of Object.keys(obj.data ?? {})) obj.data[k] = String(obj.data[k]).replace(/\s+/g, "");
  }
  docs.push(obj);
}
if (docs.length === 0) problems.push("no objects in the input");
const id = (o) => `${o.kind}/${o.metadata?.name}`;
const problem = (o, msg) => problems.push(`${id(o)}: ${msg}`);

// 1. Schemas.
for (const o of docs) {
  const file = MODELS[o.apiVersion];
  if (!file) {
    problem(o, `apiVersion ${o.apiVersion} is not one this validator knows`);
    continue;
  }
  const Model = (await mod(file))[o.kind];
  if (!Model) {
    problem(o, `kind ${o.kind} is not in ${o.apiVersion}`);
    continue;
  }
  try {
    new Model(o).validate();
  } catch (e) {
    problem(o, `schema: ${e.message}`);
  }
}

// 2. Meaning.
const byKind = (kind) => docs.filter((o) => o.kind === kind);
const named = (kind, name) => docs.find((o) => o.kind === kind && o.metadata?.name === name);
const matches = (selector, labels) =>
  !!selector && Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => (labels ?? {})[k] === v);
const workloads = byKind("StatefulSet");
const podsOf = (selector) => workloads.filter((w) => matches(selector, w.spec?.template?.metadata?.labels));
const containerPorts = (w) => (w.spec?.template?.spec?.containers ?? []).flatMap((c) => c.ports ?? []);
const exists = (kind, name) => !!named(kind, name) || (kind === "Secret" && opts.external.has(name));

const seen = new Set();
for (const o of docs) {
  const key = `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
  if (seen.has(key)) problem(o, "defined twice");
  seen.add(key);
  if (o.metadata?.labels?.["app.kubernetes.io/part-of"] !== "crm-backbone") {
    problem(o, "label app.kubernetes.io/part-of=crm-backbone missing");
  }
  if (opts.namespace && !CLUSTER_SCOPED.has(o.kind) && o.metadata?.namespace !== opts.namespace) {
    problem(o, `namespace is ${o.metadata?.namespace ?? "unset"}, expected ${opts.namespace}`);
  }
}
if (opts.namespace && !named("Namespace", opts.namespace)) problems.push(`Namespace/${opts.namespace}: missing`);

// Kafka: users with a transactional id are the single writers of their topic.
const kafkas = byKind("Kafka");
const brokers = byKind("KafkaNodePool")
  .filter((p) => (p.spec?.roles ?? []).includes("broker"))
  .reduce((n, p) => n + (p.spec?.replicas ?? 0), 0);
const writerOf = {};  // KafkaUser name -> topic it writes
for (const u of byKind("KafkaUser")) {
  const acls = u.spec?.authorization?.acls ?? [];
  const writes = acls.filter((a) => a.resource?.type === "topic" && (a.operations ?? []).includes("Write"));
  for (const w of writes) {
    writerOf[u.metadata.name] = w.resource.name;
    const txn = acls.some((a) => a.resource?.type === "transactionalId" && a.resource?.name === `crm-writer.${w.resource.name}`);
    if (!txn) problem(u, `writes ${w.resource.name} but may not use transactional.id crm-writer.${w.resource.name}`);
    const topic = byKind("KafkaTopic").find((t) => (t.spec?.topicName ?? t.metadata.name) === w.resource.name);
    if (!topic) problem(u, `writes ${w.resource.name}, which no KafkaTopic declares`);
  }
}
for (const o of [...byKind("KafkaTopic"), ...byKind("KafkaUser"), ...byKind("KafkaNodePool")]) {
  const cluster = o.metadata?.labels?.["strimzi.io/cluster"];
  if (!kafkas.some((k) => k.metadata.name === cluster)) problem(o, `label strimzi.io/cluster=${cluster} names no Kafka`);
}
for (const k of kafkas) {
  const cfg = k.spec?.kafka?.config ?? {};
  for (const key of ["default.replication.factor", "offsets.topic.replication.factor", "transaction.state.log.replication.factor"]) {
    if (!(cfg[key] >= 1 && cfg[key] <= brokers)) problem(k, `${key}=${cfg[key]} with ${brokers} brokers`);
  }
  if (!(cfg["transaction.state.log.min.isr"] <= cfg["transaction.state.log.replication.factor"])) {
    problem(k, "transaction.state.log.min.isr above its replication factor");
  }
  if (cfg["auto.create.topics.enable"] !== false) problem(k, "auto.create.topics.enable must be false");
  if (k.metadata?.annotations?.["strimzi.io/node-pools"] !== "enabled") problem(k, "strimzi.io/node-pools must be enabled");
}
for (const t of byKind("KafkaTopic")) {
  const s = t.spec ?? {};
  const cfg = s.config ?? {};
  if (!(s.replicas >= 1 && s.replicas <= brokers)) problem(t, `replicas ${s.replicas} with ${brokers} brokers`);
  if (opts.replicas && s.replicas !== opts.replicas) problem(t, `replicas ${s.replicas}, expected ${opts.replicas}`);
  const isr = cfg["min.insync.replicas"];
  if (opts.minIsr && isr !== opts.minIsr) problem(t, `min.insync.replicas ${isr}, expected ${opts.minIsr}`);
  if (!(isr >= 1 && (isr < s.replicas || s.replicas === 1))) problem(t, `min.insync.replicas ${isr} with ${s.replicas} replicas leaves no room for a broker down`);
  if (String(cfg["retention.ms"]) !== "-1" || String(cfg["retention.bytes"]) !== "-1") problem(t, "the log must be kept forever (retention.ms and retention.bytes -1)");
  if (opts.partitions && /^crm\.\w+\.events\.v1$/.test(s.topicName ?? "") && s.partitions !== opts.partitions) {
    problem(t, `partitions ${s.partitions}, but the services create and expect ${opts.partitions}`);
  }
}

// Workloads.
for (const w of workloads) {
  const spec = w.spec ?? {};
  const pod = spec.template?.spec ?? {};
  const labels = spec.template?.metadata?.labels ?? {};
  if (!matches(spec.selector?.matchLabels, labels)) problem(w, "selector does not select its own pods");
  for (const l of ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"]) {
    if (!labels[l]) problem(w, `pod label ${l} missing`);
  }
  const headless = named("Service", spec.serviceName);
  if (!headless || headless.spec?.clusterIP !== "None") problem(w, `serviceName ${spec.serviceName} is not a headless Service`);
  else if (!matches(headless.spec.selector, labels)) problem(w, `headless Service ${spec.serviceName} does not select its pods`);
  if (!(spec.volumeClaimTemplates ?? []).some((v) => v.spec?.resources?.requests?.storage)) problem(w, "no volume for its data");
  if (pod.securityContext?.runAsNonRoot !== true) problem(w, "pod must run as non-root");
  if (pod.securityContext?.seccompProfile?.type !== "RuntimeDefault") problem(w, "seccompProfile RuntimeDefault missing");
  const volumes = new Set([...(pod.volumes ?? []).map((v) => v.name), ...(spec.volumeClaimTemplates ?? []).map((v) => v.metadata?.name)]);
  for (const v of pod.volumes ?? []) {
    if (v.secret && !exists("Secret", v.secret.secretName) && !byKind("KafkaUser").some((u) => u.metadata.name === v.secret.secretName) &&
        !kafkas.some((k) => `${k.metadata.name}-cluster-ca-cert` === v.secret.secretName)) {
      problem(w, `volume ${v.name}: Secret ${v.secret.secretName} is neither defined, nor made by Strimzi, nor declared external`);
    }
  }
  const user = (pod.volumes ?? []).find((v) => v.name === "kafka-user")?.secret?.secretName;
  if (!byKind("KafkaUser").some((u) => u.metadata.name === user)) problem(w, `its Kafka certificate ${user} is no KafkaUser`);
  if (writerOf[user] && spec.replicas !== 1) problem(w, `writes ${writerOf[user]}, so it must run exactly 1 replica (it has ${spec.replicas})`);
  for (const c of pod.containers ?? []) {
    const where = `container ${c.name}`;
    if (!c.image) problem(w, `${where}: no image`);
    else if (opts.requireTag && (!/:[^/]+$/.test(c.image) || c.image.endsWith(":latest"))) problem(w, `${where}: image ${c.image} needs a release tag`);
    for (const r of ["cpu", "memory"]) {
      if (!c.resources?.requests?.[r]) problem(w, `${where}: no ${r} request`);
    }
    if (!c.resources?.limits?.memory) problem(w, `${where}: no memory limit`);
    const ports = new Map((c.ports ?? []).map((p) => [p.containerPort, p.name]));
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const p = c[probe];
      if (!p?.grpc) problem(w, `${where}: ${probe} must use gRPC health`);
      else if (!ports.has(p.grpc.port)) problem(w, `${where}: ${probe} port ${p.grpc.port} is not a container port`);
    }
    const sc = c.securityContext ?? {};
    if (sc.allowPrivilegeEscalation !== false) problem(w, `${where}: allowPrivilegeEscalation must be false`);
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) problem(w, `${where}: capabilities must drop ALL`);
    if (sc.readOnlyRootFilesystem !== true) problem(w, `${where}: root filesystem must be read-only`);
    for (const m of c.volumeMounts ?? []) {
      if (!volumes.has(m.name)) problem(w, `${where}: mounts ${m.name}, which is no volume`);
    }
    for (const e of c.envFrom ?? []) {
      if (e.configMapRef && !exists("ConfigMap", e.configMapRef.name)) problem(w, `${where}: ConfigMap ${e.configMapRef.name} missing`);
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      const s = named("Secret", ref.name);
      if (!s && !opts.external.has(ref.name)) problem(w, `${where}: env ${e.name}: Secret ${ref.name} missing (not declared external)`);
      if (s && !(ref.key in (s.data ?? {})) && !(ref.key in (s.stringData ?? {}))) problem(w, `${where}: env ${e.name}: Secret ${ref.name} has no key ${ref.key}`);
    }
  }
}

// Whatever selects pods must select some, by ports they have.
for (const s of byKind("Service")) {
  const pods = podsOf(s.spec?.selector);
  if (pods.length === 0) { problem(s, "selects no pods"); continue; }
  for (const p of s.spec?.ports ?? []) {
    if (typeof p.targetPort === "string" && !pods.every((w) => containerPorts(w).some((cp) => cp.name === p.targetPort))) {
      problem(s, `targetPort ${p.targetPort} is no container port of the pods it selects`);
    }
  }
}
for (const b of byKind("PodDisruptionBudget")) {
  if (podsOf(b.spec?.selector?.matchLabels).length === 0) problem(b, "selects no pods");
}
for (const n of byKind("NetworkPolicy")) {
  const pods = podsOf(n.spec?.podSelector?.matchLabels);
  if (pods.length === 0) { problem(n, "selects no pods"); continue; }
  for (const rule of n.spec?.ingress ?? []) {
    for (const p of rule.ports ?? []) {
      if (typeof p.port === "string" && !pods.some((w) => containerPorts(w).some((cp) => cp.name === p.port))) {
        problem(n, `ingress port ${p.port} is no container port of the pods it selects`);
      }
    }
  }
}
for (const m of byKind("PodMonitor")) {
  const pods = podsOf(m.spec?.selector?.matchLabels);
  if (pods.length === 0) problem(m, "selects no pods");
  for (const e of m.spec?.podMetricsEndpoints ?? []) {
    if (!pods.every((w) => containerPorts(w).some((cp) => cp.name === e.port))) problem(m, `port ${e.port} missing on the pods it selects`);
  }
}
for (const i of byKind("Ingress")) {
  for (const rule of i.spec?.rules ?? []) {
    for (const p of rule.http?.paths ?? []) {
      const b = p.backend?.service;
      const svc = named("Service", b?.name);
      if (!svc) problem(i, `backend Service ${b?.name} missing`);
      else if (!(svc.spec?.ports ?? []).some((sp) => sp.name === b.port?.name || sp.port === b.port?.number)) {
        problem(i, `backend Service ${b.name} has no port ${b.port?.name ?? b.port?.number}`);
      }
    }
  }
}

const counts = {};
for (const o of docs) counts[o.kind] = (counts[o.kind] ?? 0) + 1;
if (problems.length) {
  for (const p of problems) console.error(`invalid: ${p}`);
  console.error(`${problems.length} problem(s) in ${opts.file}`);
  process.exit(1);
}
console.log(`${opts.file}: ${docs.length} objects valid (${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ")})`);
