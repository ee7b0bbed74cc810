// deploy/Dockerfile and deploy/compose.yaml checked against the build, on a machine without a
// container engine (this one): nothing here builds or runs an image. It checks that
//  - every binary CMake builds has an image stage, built by the build stage's ninja line, and
//    every file each stage copies exists in the build, its ENTRYPOINT runs one it installs;
//    crmctl's stage has crm-ops beside crmctl;
//  - the runtime stage's packages (with what they depend on) hold every shared library each
//    binary loads (ldd, dpkg -S, apt-cache depends);
//  - every flag an ENTRYPOINT or compose passes is one the binary's --help lists;
//  - compose builds only stages that exist, creates the four topics with the partition count
//    the services expect, and maps no host port twice.
// node tests/deploy_test.mjs SOURCE_DIR BUILD_DIR MODULES_DIR
import fs from "node:fs";
import path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";

const [src, build, modules] = process.argv.slice(2);
const YAML = await import(pathToFileURL(path.join(modules, "node_modules/yaml/dist/index.js")).href);
const problems = [];
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

const dockerfile = fs.readFileSync(path.join(src, "deploy/Dockerfile"), "utf8").replace(/\\\n/g, " ");
// stage -> {copy: build-relative path (the last), copies: every one, installed: [...], entrypoint: [...]}
const stages = new Map();
let current = null;
for (const line of dockerfile.split("\n")) {
  const from = line.match(/^FROM runtime AS (\S+)/);
  if (from) stages.set((current = from[1]), { entrypoint: [] });
  else if (/^FROM /.test(line)) current = null;
  const copy = line.match(/^COPY --from=build \/src\/build\/(\S+) (\S+)/);
  if (copy && current) {
    stages.get(current).copy = copy[1];
    (stages.get(current).copies ??= []).push(copy[1]);
    (stages.get(current).installed ??= []).push(copy[2]);
  }
  const entry = line.match(/^ENTRYPOINT (\[.*\])/);
  if (entry && current) stages.get(current).entrypoint = JSON.parse(entry[1]);
}

// Every binary has a stage.
const binaries = [];
for (const dir of ["services", "tools"]) {
  for (const f of sh("find", [path.join(src, dir), "-name", "CMakeLists.txt"]).trim().split("\n")) {
    for (const m of fs.readFileSync(f, "utf8").matchAll(/add_executable\((crm[\w-]*)\s/g)) binaries.push(m[1]);
  }
}
const ninja = dockerfile.match(/ninja -C build ([^&]*)/)?.[1].split(/\s+/).filter(Boolean) ?? [];
for (const b of binaries) {
  if (!stages.has(b)) problems.push(`Dockerfile: no stage for the binary ${b}`);
  if (!ninja.includes(b)) problems.push(`Dockerfile: the build stage does not build ${b}`);
}
for (const [name, s] of stages) {
  if (!s.copy) problems.push(`Dockerfile: stage ${name} copies nothing from the build`);
  for (const c of s.copies ?? []) {
    if (!fs.existsSync(path.join(build, c))) problems.push(`Dockerfile: stage ${name} copies build/${c}, which the build does not make`);
  }
}
for (const [name, s] of stages) {
  const run = s.entrypoint[0];
  if (!run || !(s.installed ?? []).includes(run)) problems.push(`Dockerfile: stage ${name}'s ENTRYPOINT runs ${run}, which it does not install`);
}
// crmctl runs crm-ops, looked up beside its own file, for rebuild, tail, lag and verify.
const ctlAt = stages.get("crmctl")?.entrypoint[0];
if (ctlAt && !stages.get("crmctl").installed?.includes(path.join(path.dirname(ctlAt), "crm-ops"))) {
  problems.push(`Dockerfile: the crmctl stage has no crm-ops beside ${ctlAt} (crmctl runs it for its operator verbs)`);
}

// The runtime packages hold every library.
const block = dockerfile.match(/# RUNTIME_PACKAGES.*?--no-install-recommends(.*?)&&/s)?.[1] ?? "";
const listed = block.split(/\s+/).filter((p) => /^[a-z0-9][a-z0-9.+-]+$/.test(p));
if (listed.length === 0) problems.push("Dockerfile: no RUNTIME_PACKAGES list found");
const closure = new Set(
  sh("apt-cache", ["depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                   "--no-replaces", "--no-enhances", "--no-pre-depends", ...listed])
    .split("\n").map((l) => l.trim()).filter((l) => l && !l.includes(":") && !l.startsWith("<")));
for (const p of listed) if (!closure.has(p)) problems.push(`Dockerfile: runtime package ${p} is unknown to apt`);
const libsOf = new Map();
for (const [name, s] of stages) {
  if (!s.copy) continue;
  libsOf.set(name, sh("ldd", [path.join(build, s.copy)]).split("\n")
    .map((l) => l.match(/=> (\/\S+)/)?.[1]).filter(Boolean));
}
// One dpkg -S for every spelling of every library (dpkg -S reads its whole database per call).
const spellings = (lib) => [fs.realpathSync(lib), lib, `/usr${lib}`];
const allPaths = [...new Set([...libsOf.values()].flat().flatMap(spellings))];
const ownerOf = new Map();
const dpkg = spawnSync("dpkg", ["-S", ...allPaths], { encoding: "utf8" });
for (const line of dpkg.stdout.split("\n")) {
  const m = line.match(/^([^:\s]+)(?::\S+)?: (\/\S+)$/);
  if (m) ownerOf.set(m[2], m[1]);
}
for (const [name, libs] of libsOf) {
  for (const lib of libs) {
    const owner = spellings(lib).map((p) => ownerOf.get(p)).find(Boolean);
    if (!owner) problems.push(`${name}: ${lib} belongs to no Debian package`);
    else if (!closure.has(owner)) problems.push(`${name}: loads ${lib} from ${owner}, which the runtime stage does not install`);
  }
}

// Flags given to a binary are flags it has.
const helpOf = new Map();
const help = (stage) => {
  if (!helpOf.has(stage)) helpOf.set(stage, sh(path.join(build, stages.get(stage).copy), ["--help"]));
  return helpOf.get(stage);
};
const checkFlags = (where, stage, args) => {
  for (const a of args) {
    const flag = a.match(/^(--[\w-]+)/)?.[1];
    if (flag && !help(stage).includes(flag)) problems.push(`${where}: ${stage} has no flag ${flag}`);
  }
};
for (const [name, s] of stages) if (s.copy) checkFlags(`Dockerfile ENTRYPOINT of ${name}`, name, s.entrypoint.slice(1));

// compose.
const compose = YAML.parse(fs.readFileSync(path.join(src, "deploy/compose.yaml"), "utf8"), { merge: true });
// The partitions every topic is created with, named once in libs/topics/topics.h.
const parts = [...new Set(sh("grep", ["-h", "inline constexpr int32_t kPartitions = ", path.join(src, "libs/topics/topics.h")])
  .trim().split("\n").map((l) => l.match(/= (\d+);/)[1]))];
const topicScript = [].concat(compose.services?.topics?.command ?? []).join("\n");
for (const svc of ["customers", "opportunities", "tasks", "tickets"]) {
  if (!topicScript.includes(`crm.${svc}.events.v1`)) problems.push(`compose: topic crm.${svc}.events.v1 is not created`);
}
if (parts.length !== 1 || !topicScript.includes(`--partitions ${parts[0]}`)) problems.push(`compose: topics must have ${parts.join("/")} partitions`);
if (!topicScript.includes("retention.ms=-1")) problems.push("compose: topics must be kept forever");
const hostPorts = new Set();
for (const [name, s] of Object.entries(compose.services ?? {})) {
  const target = s.build?.target;
  if (s.build && !stages.has(target)) problems.push(`compose: ${name} builds stage ${target}, which the Dockerfile lacks`);
  if (target && stages.get(target)?.copy) {
    for (const env of Object.keys(s.environment ?? {})) {
      if (/^(KAFKA_|CRM_)/.test(env) && !help(target).includes(env) && env !== "CRM_SIGNING_KEY") {
        problems.push(`compose: ${name} sets ${env}, which ${target} does not read`);
      }
    }
    if (s.command) checkFlags(`compose ${name}`, target, [].concat(s.command));
  }
  for (const p of s.ports ?? []) {
    const host = String(p).split(":").slice(0, -1).join(":");
    if (hostPorts.has(host)) problems.push(`compose: host port ${host} mapped twice`);
    hostPorts.add(host);
  }
}

if (problems.length) {
  for (const p of problems) console.error(`invalid: ${p}`);
  process.exit(1);
}
console.log(`deploy: ${stages.size} image stages for ${binaries.length} binaries; ${listed.length} runtime packages hold every library; compose: ${Object.keys(compose.services).length} services`);
