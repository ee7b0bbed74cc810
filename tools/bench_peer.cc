#include "tools/bench_peer.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace crm::bench {
namespace {

constexpr char kSchema[] = R"sql(
CREATE TABLE customers (id uuid PRIMARY KEY, phone text NOT NULL UNIQUE, display_name text NOT NULL,
                        owner_id text NOT NULL, version integer NOT NULL, state bytea NOT NULL);
CREATE TABLE events (event_id uuid PRIMARY KEY, aggregate_id uuid NOT NULL, version integer NOT NULL,
                     event_type text NOT NULL, payload bytea NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
                     UNIQUE (aggregate_id, version));
CREATE SEQUENCE phones;
)sql";

// One statement: both rows in one transaction, one round trip, one synchronous commit.
constexpr char kScript[] =
    "WITH c AS (INSERT INTO customers (id, phone, display_name, owner_id, version, state) "
    "VALUES (gen_random_uuid(), '13' || lpad(nextval('phones')::text, 9, '0'), 'bench customer', 'bench', 1, "
    "decode(repeat('ab', 200), 'hex')) RETURNING id) "
    "INSERT INTO events (event_id, aggregate_id, version, event_type, payload) "
    "SELECT gen_random_uuid(), id, 1, 'crm.customers.v1.CustomerCreated', decode(repeat('cd', 300), 'hex') FROM c;\n";

// Runs argv (as `user` when we are root and it is set) and waits. Output goes to `out` when
// given, else to our stderr.
absl::StatusOr<int> RunAs(const std::vector<std::string>& argv, const char* user, const std::string& out = "",
                          pid_t* started = nullptr) {
  passwd* pw = nullptr;
  if (user != nullptr && geteuid() == 0) {
    pw = getpwnam(user);
    if (pw == nullptr) return absl::FailedPreconditionError(absl::StrCat("no user ", user, " to run ", argv[0], " as"));
  }
  std::fflush(stdout);  // else the child would write our buffered output again
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    if (pw != nullptr && (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)) _exit(126);
    if (!out.empty()) {
      FILE* f = std::freopen(out.c_str(), "w", stdout);
      if (f == nullptr) _exit(125);
      dup2(fileno(stdout), 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  if (started != nullptr) {
    *started = pid;
    return 0;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// utime + stime + cutime + cstime of `pid`, in seconds.
double ProcessCpu(pid_t pid) {
  const std::string stat = Slurp(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  const std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
  double ticks = 0;
  for (size_t i = 11; i <= 14 && i < f.size(); ++i) {  // fields 14..17 of the man page
    double v = 0;
    if (absl::SimpleAtod(f[i], &v)) ticks += v;
  }
  return ticks / sysconf(_SC_CLK_TCK);
}

double ChildrenCpu() {
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresPeer>> PostgresPeer::Start(const std::string& base, std::string pg_bin) {
  if (pg_bin.empty()) {
    std::vector<std::string> found;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      if (std::filesystem::exists(e.path() / "bin/postgres")) found.push_back((e.path() / "bin").string());
    }
    std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    if (found.empty()) {
      return absl::FailedPreconditionError(
          "the PostgreSQL peer needs Debian's postgresql package (no /usr/lib/postgresql/*/bin/postgres); "
          "tools/install-deps.sh installs it");
    }
    pg_bin = found.back();
  }
  std::unique_ptr<PostgresPeer> p(new PostgresPeer());
  p->bin_ = pg_bin;
  p->dir_ = absl::StrCat(base, "/crm-bench-pg-", getpid());
  p->socket_dir_ = p->dir_ + "/socket";
  p->port_ = 40000 + getpid() % 20000;
  std::filesystem::remove_all(p->dir_);
  std::filesystem::create_directories(p->socket_dir_);
  if (geteuid() == 0) {
    passwd* pw = getpwnam("postgres");
    if (pw == nullptr) return absl::FailedPreconditionError("running as root, and there is no postgres user to run PostgreSQL as");
    for (const auto& d : {p->dir_, p->socket_dir_}) {
      if (chown(d.c_str(), pw->pw_uid, pw->pw_gid) != 0) return absl::InternalError(absl::StrCat("chown ", d));
    }
  }
  const std::string data = p->dir_ + "/data";
  auto rc = RunAs({pg_bin + "/initdb", "-D", data, "-U", "crm", "-A", "trust", "-E", "UTF8", "--no-locale"}, "postgres",
                  p->dir_ + "/socket/initdb.log");
  if (!rc.ok()) return rc.status();
  if (*rc != 0) return absl::InternalError(absl::StrCat("initdb failed: ", Slurp(p->dir_ + "/socket/initdb.log")));
  pid_t pm = -1;
  rc = RunAs({pg_bin + "/postgres", "-D", data, "-k", p->socket_dir_, "-p", absl::StrCat(p->port_), "-c",
              "listen_addresses=", "-c", "max_connections=200"},
             "postgres", p->dir_ + "/socket/postgres.log", &pm);
  if (!rc.ok()) return rc.status();
  p->postmaster_ = pm;
  for (int i = 0; i < 300; ++i) {
    auto ready = RunAs({pg_bin + "/pg_isready", "-q", "-h", p->socket_dir_, "-p", absl::StrCat(p->port_)}, nullptr);
    if (ready.ok() && *ready == 0) break;
    if (i == 299) return absl::DeadlineExceededError(absl::StrCat("PostgreSQL did not start: ", Slurp(p->dir_ + "/socket/postgres.log")));
    usleep(100000);
  }
  auto schema = p->Psql(kSchema);
  if (!schema.ok()) return schema.status();
  std::ofstream(p->dir_ + "/create.sql") << kScript;
  return p;
}

absl::StatusOr<std::string> PostgresPeer::Psql(const std::string& sql) {
  const std::string out = dir_ + "/psql.out";
  auto rc = RunAs({bin_ + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socket_dir_, "-p", absl::StrCat(port_), "-U",
                   "crm", "-d", "postgres", "-c", sql},
                  nullptr, out);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) return absl::InternalError(absl::StrCat("psql: ", Slurp(out)));
  return Slurp(out);
}

absl::StatusOr<Result> PostgresPeer::Run(int clients, absl::Duration duration, absl::Duration warmup) {
  auto pgbench = [&](absl::Duration d, bool log, const std::string& out) {
    std::vector<std::string> argv = {bin_ + "/pgbench", "-n", "-M", "prepared", "-h", socket_dir_, "-p",
                                     absl::StrCat(port_), "-U", "crm", "-c", absl::StrCat(clients), "-j",
                                     absl::StrCat(std::min(clients, 2)), "-T",
                                     absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(d))), "-f",
                                     dir_ + "/create.sql"};
    if (log) {
      argv.push_back("-l");
      argv.push_back("--log-prefix=" + dir_ + "/pglog");
    }
    argv.push_back("postgres");
    return RunAs(argv, nullptr, out);
  };
  if (warmup > absl::ZeroDuration()) {
    auto rc = pgbench(warmup, false, dir_ + "/warmup.out");
    if (!rc.ok()) return rc.status();
    if (*rc != 0) return absl::InternalError(absl::StrCat("pgbench: ", Slurp(dir_ + "/warmup.out")));
  }
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (absl::StartsWith(e.path().filename().string(), "pglog")) std::filesystem::remove(e.path());
  }
  const double server0 = ProcessCpu(postmaster_), client0 = ChildrenCpu();
  auto rc = pgbench(duration, true, dir_ + "/run.out");
  if (!rc.ok()) return rc.status();
  if (*rc != 0) return absl::InternalError(absl::StrCat("pgbench: ", Slurp(dir_ + "/run.out")));
  usleep(200000);  // the backends exit and the postmaster reaps them, adding their CPU to its own
  const double server1 = ProcessCpu(postmaster_), client1 = ChildrenCpu();
  std::vector<double> lat_ms;
  int64_t failed = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (!absl::StartsWith(e.path().filename().string(), "pglog")) continue;
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      // client_id transaction_no time script_no time_epoch time_us: `time` is the latency in µs.
      const std::vector<std::string> f = absl::StrSplit(line, ' ');
      double us = 0;
      if (f.size() >= 3 && absl::SimpleAtod(f[2], &us)) {
        lat_ms.push_back(us / 1000);
      } else {
        ++failed;
      }
    }
  }
  Result r;
  r.workload = "create";
  r.backend = "postgres";
  r.clients = clients;
  r.ops = static_cast<int64_t>(lat_ms.size());
  r.errors = failed;
  r.seconds = absl::ToDoubleSeconds(duration);
  r.p50_ms = Percentile(lat_ms, 0.5);
  r.p99_ms = Percentile(lat_ms, 0.99);
  r.p999_ms = Percentile(lat_ms, 0.999);
  r.cpu_s = (server1 - server0) + (client1 - client0);
  return r;
}

PostgresPeer::~PostgresPeer() {
  if (postmaster_ > 0) {
    kill(postmaster_, SIGQUIT);  // immediate shutdown: the cluster is thrown away
    int status = 0;
    waitpid(postmaster_, &status, 0);
  }
  if (!dir_.empty()) std::filesystem::remove_all(dir_);
}

}  // namespace crm::bench
