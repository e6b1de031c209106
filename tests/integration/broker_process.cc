#include "broker_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

extern char** environ;

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout{10'000};
constexpr milliseconds kStopTimeout{5'000};

// Our environment without GOPHERMQ_* (a developer's shell must not change what
// a test sees), plus `extra`.
std::vector<std::string> ChildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (std::string_view(*entry).starts_with("GOPHERMQ_")) continue;
    env.emplace_back(*entry);
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

// The port in the first complete line holding `msg=listening`, or 0.
std::uint16_t ListeningPort(const std::string& log) {
  std::size_t line_start = 0;
  for (std::size_t line_end; (line_end = log.find('\n', line_start)) != std::string::npos;
       line_start = line_end + 1) {
    const std::string_view line(log.data() + line_start, line_end - line_start);
    if (line.find("msg=listening") == std::string_view::npos) continue;
    const std::size_t key = line.find("api_port=");
    if (key == std::string_view::npos) continue;
    const std::string_view digits = line.substr(key + 9);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec == std::errc() && port > 0 && port < 65536 && end != digits.data()) {
      return static_cast<std::uint16_t>(port);
    }
  }
  return 0;
}

// Polls until 127.0.0.1:port accepts a TCP connection; false when the child
// exits first or the timeout passes.
bool AcceptsConnections(std::uint16_t port, Subprocess& child, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool connected =
        fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    if (fd >= 0) ::close(fd);
    if (connected) return true;
    if (child.WaitForExit(milliseconds(0)) || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));  // nothing to wait on but the port itself
  }
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "wait status " + std::to_string(status);
}

}  // namespace

std::string BrokerBinary() {
  const char* path = std::getenv("GOPHERMQ_BIN");
  if (path == nullptr || *path == '\0') return {};
  // Absolute: the child runs in a temporary working directory.
  return std::filesystem::absolute(path).string();
}

std::string FindOnPath(std::string_view name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::istringstream directories(path);
  for (std::string directory; std::getline(directories, directory, ':');) {
    if (directory.empty()) continue;
    std::string candidate = directory;
    candidate += '/';
    candidate += name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

std::vector<std::string> OurEnvironment() {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    env.emplace_back(*entry);
  }
  return env;
}

// --- TempDir ---

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "gophermq-it-XXXXXX").string();
  if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool TempDir::WriteFile(const std::string& name, const std::string& contents) const {
  std::ofstream file(path_ + "/" + name, std::ios::binary | std::ios::trunc);
  file << contents;
  return static_cast<bool>(file);
}

// --- Subprocess ---

bool Subprocess::Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       const std::string& working_dir, std::string* error,
                       const std::vector<int>& child_fds, rlim_t open_files_limit) {
  int stdout_pipe[2];
  int stderr_pipe[2];
  // O_CLOEXEC: no other child (or test socket) inherits these ends.
  if (::pipe2(stdout_pipe, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  if (::pipe2(stderr_pipe, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + std::strerror(errno);
    ::close(stdout_pipe[0]);
    ::close(stdout_pipe[1]);
    return false;
  }
  // Everything the child needs is built before fork(): after fork only
  // async-signal-safe calls are allowed in a multi-threaded parent.
  std::vector<char*> child_argv;
  for (const std::string& arg : argv) child_argv.push_back(const_cast<char*>(arg.c_str()));
  child_argv.push_back(nullptr);
  std::vector<char*> child_env;
  for (const std::string& entry : env) child_env.push_back(const_cast<char*>(entry.c_str()));
  child_env.push_back(nullptr);
  std::vector<int> moved_fds(child_fds.size(), -1);
  const int first_child_fd = STDERR_FILENO + 1;
  const char* exec_failed = "gophermq test harness: exec failed\n";

  const pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    for (int fd : {stdout_pipe[0], stdout_pipe[1], stderr_pipe[0], stderr_pipe[1]}) ::close(fd);
    return false;
  }
  if (pid == 0) {
    // A test process that dies must not leave a broker behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(stdout_pipe[1], STDOUT_FILENO);
    ::dup2(stderr_pipe[1], STDERR_FILENO);
    // Moved above the target numbers first, so that no dup2 below overwrites
    // a descriptor still to be placed; dup2 then clears close-on-exec on the
    // targets only (a descriptor that already has its target's number would
    // keep its O_CLOEXEC and be closed by the exec).
    const int past_targets = first_child_fd + static_cast<int>(child_fds.size());
    for (std::size_t i = 0; i < child_fds.size(); ++i) {
      moved_fds[i] = ::fcntl(child_fds[i], F_DUPFD_CLOEXEC, past_targets);
    }
    for (std::size_t i = 0; i < child_fds.size(); ++i) {
      ::dup2(moved_fds[i], first_child_fd + static_cast<int>(i));
    }
    const rlimit files{open_files_limit, open_files_limit};
    if (open_files_limit != 0) ::setrlimit(RLIMIT_NOFILE, &files);
    if (::chdir(working_dir.c_str()) == 0) {
      ::execve(child_argv[0], child_argv.data(), child_env.data());
    }
    [[maybe_unused]] ssize_t ignored =
        ::write(STDERR_FILENO, exec_failed, std::strlen(exec_failed));
    ::_exit(127);
  }
  pid_ = pid;
  ::close(stdout_pipe[1]);
  ::close(stderr_pipe[1]);
  drainer_ = std::thread(&Subprocess::DrainOutput, this, stdout_pipe[0], stderr_pipe[0]);
  return true;
}

void Subprocess::DrainOutput(int stdout_fd, int stderr_fd) {
  pollfd fds[2] = {{stdout_fd, POLLIN, 0}, {stderr_fd, POLLIN, 0}};
  int open_count = 2;
  // The stop flag only matters when a grandchild keeps a pipe open after the
  // child is gone; normally both pipes simply reach EOF.
  while (open_count > 0 && !stop_draining_.load()) {
    const int ready = ::poll(fds, 2, 50);
    if (ready <= 0) continue;
    for (pollfd& pfd : fds) {
      if (pfd.fd < 0 || pfd.revents == 0) continue;
      char chunk[8192];
      const ssize_t got = ::read(pfd.fd, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        ::close(pfd.fd);
        pfd.fd = -1;
        --open_count;
        continue;
      }
      std::lock_guard lock(mutex_);
      (pfd.fd == fds[0].fd ? stdout_ : stderr_).append(chunk, static_cast<std::size_t>(got));
      output_changed_.notify_all();
    }
  }
  for (pollfd& pfd : fds) {
    if (pfd.fd >= 0) ::close(pfd.fd);
  }
  std::lock_guard lock(mutex_);
  output_ended_ = true;
  output_changed_.notify_all();
}

bool Subprocess::WaitForStderr(const std::function<bool(const std::string&)>& done,
                               milliseconds timeout) {
  std::unique_lock lock(mutex_);
  output_changed_.wait_for(lock, timeout, [&] { return done(stderr_) || output_ended_; });
  return done(stderr_);
}

bool Subprocess::WaitForOutputEnd(milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return output_changed_.wait_for(lock, timeout, [&] { return output_ended_; });
}

bool Subprocess::WaitForExit(milliseconds timeout) {
  if (exited_) return true;
  if (pid_ < 0) return false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const pid_t reaped = ::waitpid(pid_, &wait_status_, WNOHANG);
    if (reaped == pid_) {
      exited_ = true;
      return true;
    }
    if (reaped < 0 && errno != EINTR) return false;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));  // polling waitpid; no child-exit fd here
  }
}

void Subprocess::Signal(int signal_number) {
  if (pid_ > 0 && !exited_) ::kill(pid_, signal_number);
}

void Subprocess::Stop(milliseconds grace) {
  if (pid_ <= 0 || WaitForExit(milliseconds(0))) return;
  Signal(SIGTERM);
  if (!WaitForExit(grace)) {
    Signal(SIGKILL);
    WaitForExit(milliseconds(5'000));
  }
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    WaitForExit(milliseconds(5'000));
  }
  if (drainer_.joinable()) {
    WaitForOutputEnd(milliseconds(1'000));
    stop_draining_.store(true);
    drainer_.join();
  }
}

std::string Subprocess::stdout_text() const {
  std::lock_guard lock(mutex_);
  return stdout_;
}

std::string Subprocess::stderr_text() const {
  std::lock_guard lock(mutex_);
  return stderr_;
}

// --- BrokerProcess ---

std::unique_ptr<BrokerProcess> BrokerProcess::Start(const BrokerOptions& options,
                                                    std::string* error) {
  const std::string binary = BrokerBinary();
  if (binary.empty()) {
    *error = "GOPHERMQ_BIN is not set (meson test sets it)";
    return nullptr;
  }
  std::unique_ptr<BrokerProcess> broker(new BrokerProcess());
  if (!broker->working_dir_.ok()) {
    *error = "mkdtemp failed";
    return nullptr;
  }
  if (options.config_yaml && !broker->working_dir_.WriteFile("config.yaml", *options.config_yaml)) {
    *error = "cannot write config.yaml";
    return nullptr;
  }
  std::vector<std::string> argv = {binary, "broker", "--broker.port=0", "--broker.host=127.0.0.1",
                                   "--broker.cores=2"};
  if (options.api_port) argv.push_back("--broker.port=" + std::to_string(*options.api_port));
  if (options.monitoring_address) {
    argv.push_back("--monitoring.enable=true");
    argv.push_back("--monitoring.port=" + *options.monitoring_address);
  } else {
    argv.push_back("--monitoring.enable=false");
  }
  // The whole suite can run again in another mode of the broker (meson runs
  // it with --broker.io-uring=basic to exercise the io_uring fallbacks).
  // Space-separated; a test's own flags come after and win.
  if (const char* suite_flags = std::getenv("INTEGRATION_BROKER_FLAGS")) {
    std::istringstream words(suite_flags);
    for (std::string flag; words >> flag;) argv.push_back(flag);
  }
  argv.insert(argv.end(), options.flags.begin(), options.flags.end());
  if (!broker->process_.Spawn(argv, ChildEnvironment(options.env), broker->working_dir_.path(),
                              error, {}, options.open_files_limit)) {
    return nullptr;
  }
  if (options.api_port) {
    broker->port_ = AcceptsConnections(*options.api_port, broker->process_, kStartTimeout)
                        ? *options.api_port
                        : 0;
  } else {
    broker->process_.WaitForStderr([](const std::string& log) { return ListeningPort(log) != 0; },
                                   kStartTimeout);
    broker->port_ = ListeningPort(broker->process_.stderr_text());
    const std::optional<std::string> metrics_port =
        LogField(broker->process_.stderr_text(), "listening", "metrics_port");
    unsigned parsed = 0;
    if (metrics_port &&
        std::from_chars(metrics_port->data(), metrics_port->data() + metrics_port->size(), parsed)
                .ec == std::errc() &&
        parsed < 65536) {
      broker->metrics_port_ = static_cast<std::uint16_t>(parsed);
    }
  }
  if (broker->port_ == 0) {
    std::string state =
        broker->process_.WaitForExit(milliseconds(0))
            ? DescribeWaitStatus(broker->process_.wait_status())
            : "still running after " + std::to_string(kStartTimeout.count()) + " ms";
    *error = options.api_port ? "broker did not accept connections on its API port ("
                              : "broker did not log msg=listening with api_port (";
    *error += state + "); argv:";
    for (const std::string& arg : argv) *error += " " + arg;
    *error += "\n--- broker output ---\n" + broker->log();
    return nullptr;  // the destructor kills it
  }
  return broker;
}

std::string BrokerProcess::log() const {
  std::string out = process_.stderr_text();
  std::string standard_output = process_.stdout_text();
  if (!standard_output.empty()) out += "--- stdout ---\n" + standard_output;
  return out;
}

bool BrokerProcess::Running() { return !process_.WaitForExit(milliseconds(0)); }

std::string BrokerProcess::Stop() {
  if (stopped_) return {};
  stopped_ = true;
  if (process_.WaitForExit(milliseconds(0))) {
    if (signalled_by_test_) return {};  // the test that signalled it checks how it ended
    return "broker had died before being stopped: " + DescribeWaitStatus(process_.wait_status());
  }
  process_.Signal(SIGTERM);
  if (!process_.WaitForExit(kStopTimeout)) {
    process_.Signal(SIGKILL);
    process_.WaitForExit(kStopTimeout);
    return "broker did not exit within " + std::to_string(kStopTimeout.count()) +
           " ms of SIGTERM; killed";
  }
  const int status = process_.wait_status();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) return {};
  return "broker stopped badly after SIGTERM: " + DescribeWaitStatus(status);
}

void BrokerProcess::Signal(int signal_number) {
  signalled_by_test_ = true;
  process_.Signal(signal_number);
}

std::string BrokerProcess::listening_line() const {
  const std::string log = process_.stderr_text();
  std::size_t line_start = 0;
  for (std::size_t line_end; (line_end = log.find('\n', line_start)) != std::string::npos;
       line_start = line_end + 1) {
    const std::string_view line(log.data() + line_start, line_end - line_start);
    for (const auto& [key, value] : LogfmtFields(line)) {
      if (key == "msg" && value == "listening") return std::string(line);
    }
  }
  return {};
}

std::vector<std::pair<std::string, std::string>> LogfmtFields(std::string_view line) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && line[at] == ' ') ++at;
    const std::size_t word_start = at;
    while (at < line.size() && line[at] != ' ' && line[at] != '=') ++at;
    if (at >= line.size() || line[at] != '=') continue;  // a bare word
    std::string key(line.substr(word_start, at - word_start));
    ++at;
    std::string value;
    if (at < line.size() && line[at] == '"') {
      for (++at; at < line.size() && line[at] != '"'; ++at) {
        if (line[at] == '\\' && at + 1 < line.size()) ++at;
        value += line[at];
      }
      ++at;  // the closing quote
    } else {
      while (at < line.size() && line[at] != ' ') value += line[at++];
    }
    fields.emplace_back(std::move(key), std::move(value));
  }
  return fields;
}

std::optional<std::string> LogField(const std::string& log, std::string_view msg,
                                    std::string_view key) {
  std::size_t line_start = 0;
  for (std::size_t line_end; (line_end = log.find('\n', line_start)) != std::string::npos;
       line_start = line_end + 1) {
    const auto fields =
        LogfmtFields(std::string_view(log.data() + line_start, line_end - line_start));
    bool wanted = false;
    for (const auto& [name, value] : fields) wanted = wanted || (name == "msg" && value == msg);
    if (!wanted) continue;
    for (const auto& [name, value] : fields) {
      if (name == key) return value;
    }
    return std::nullopt;
  }
  return std::nullopt;
}

std::uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// --- RunCommand ---

CommandResult RunCommand(const std::vector<std::string>& args,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         milliseconds timeout, const std::optional<std::string>& config_yaml) {
  CommandResult result;
  TempDir working_dir;
  if (config_yaml) working_dir.WriteFile("config.yaml", *config_yaml);
  std::vector<std::string> argv = {BrokerBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess process;
  std::string error;
  const auto started = Clock::now();
  if (argv[0].empty() || !working_dir.ok() ||
      !process.Spawn(argv, ChildEnvironment(env), working_dir.path(), &error)) {
    result.stderr_text = "could not start: " + (argv[0].empty() ? "GOPHERMQ_BIN unset" : error);
    return result;
  }
  result.exited = process.WaitForExit(timeout);
  result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - started);
  if (!result.exited) {
    process.Signal(SIGKILL);
    process.WaitForExit(milliseconds(5'000));
  }
  process.WaitForOutputEnd(milliseconds(2'000));
  const int status = process.wait_status();
  if (result.exited && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (result.exited && WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  result.stdout_text = process.stdout_text();
  result.stderr_text = process.stderr_text();
  return result;
}

}  // namespace gophermq::testing
