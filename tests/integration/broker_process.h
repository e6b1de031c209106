// Runs the real `gophermq` binary (path from GOPHERMQ_BIN) as a child process.
//
// BrokerProcess starts `gophermq broker` on an ephemeral loopback port in a
// fresh temporary working directory, waits for its `msg=listening` log line,
// keeps draining its output, and stops it with SIGTERM (SIGKILL as a last
// resort). RunCommand runs the binary to completion for one-shot commands.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace gophermq::testing {

// The broker binary: $GOPHERMQ_BIN, or empty when unset.
std::string BrokerBinary();

// The absolute path of the executable `name` on PATH; empty when none.
std::string FindOnPath(std::string_view name);
// This process's environment, for a helper program that needs it (PATH,
// HOME) as we have it.
std::vector<std::string> OurEnvironment();

// A directory made with mkdtemp, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  bool ok() const { return !path_.empty(); }
  // Writes `contents` to path()/name.
  bool WriteFile(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

// A child process with its stdout and stderr captured by a draining thread,
// so the child never blocks on a full pipe.
class Subprocess {
 public:
  Subprocess() = default;
  ~Subprocess();  // SIGKILLs a child still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // argv[0] is the program path. `env` replaces the environment. The child
  // gets `child_fds` as its descriptors 3, 4, ... (a pipe protocol, such as
  // Chromium's --remote-debugging-pipe, reads and writes those numbers).
  // `open_files_limit`, when not 0, is the child's RLIMIT_NOFILE, soft and
  // hard (ours are left as they are).
  bool Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
             const std::string& working_dir, std::string* error,
             const std::vector<int>& child_fds = {}, rlim_t open_files_limit = 0);

  // Waits until `done(stderr so far)` holds, or both pipes reached EOF, or the
  // timeout. Returns whether `done` held.
  bool WaitForStderr(const std::function<bool(const std::string&)>& done,
                     std::chrono::milliseconds timeout);
  // Waits for the child to exit; true when it did (then wait_status() is valid).
  bool WaitForExit(std::chrono::milliseconds timeout);
  // Waits until both pipes reached EOF (all output captured).
  bool WaitForOutputEnd(std::chrono::milliseconds timeout);
  void Signal(int signal_number);
  // Stops a helper program: SIGTERM, then SIGKILL when it has not exited
  // within `grace`; waits for it.
  void Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(10'000));

  bool exited() const { return exited_; }
  int wait_status() const { return wait_status_; }
  pid_t pid() const { return pid_; }
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  void DrainOutput(int stdout_fd, int stderr_fd);

  pid_t pid_ = -1;
  bool exited_ = false;
  int wait_status_ = 0;
  std::thread drainer_;
  std::atomic<bool> stop_draining_{false};
  mutable std::mutex mutex_;
  std::condition_variable output_changed_;
  std::string stdout_;
  std::string stderr_;
  bool output_ended_ = false;
};

struct BrokerOptions {
  // Extra `--key=value` flags, after the defaults (so they override them).
  std::vector<std::string> flags;
  // Variables added to the child's environment (which otherwise is ours
  // without any GOPHERMQ_* variable).
  std::vector<std::pair<std::string, std::string>> env;
  // When set, written as config.yaml in the working directory.
  std::optional<std::string> config_yaml;
  // When set, monitoring is enabled on this listen address ("127.0.0.1:9101",
  // or "127.0.0.1:0" for a free port: see metrics_port()) instead of being
  // turned off.
  std::optional<std::string> monitoring_address;
  // When set, the broker listens on this API port, and Start waits until the
  // port accepts a connection instead of waiting for the `msg=listening` line
  // (which a quiet logger.level leaves out).
  std::optional<std::uint16_t> api_port;
  // When not 0, the broker's open-files limit (soft and hard: it cannot
  // raise it).
  rlim_t open_files_limit = 0;
};

class BrokerProcess {
 public:
  // Starts the broker and waits (10 s at most) for its listening line.
  // Returns nullptr with `error` (including the broker's output) on failure.
  static std::unique_ptr<BrokerProcess> Start(const BrokerOptions& options, std::string* error);

  std::uint16_t port() const { return port_; }
  // The monitoring port from the listening line's `metrics_port=`; 0 when
  // the line has none.
  std::uint16_t metrics_port() const { return metrics_port_; }
  // The whole `msg=listening` line (without its newline); empty when none.
  std::string listening_line() const;
  pid_t pid() const { return process_.pid(); }
  // Everything the broker wrote to stderr, then to stdout, so far.
  std::string log() const;
  // Stops the broker: SIGTERM, then SIGKILL after 5 s. Returns empty when it
  // exited cleanly (status 0, or killed by the SIGTERM itself), otherwise what
  // went wrong: it had died before, crashed on a signal, exited non-zero, or
  // ignored SIGTERM.
  std::string Stop();
  // False once the broker has exited (it is reaped then).
  bool Running();

  // For tests of the broker's own shutdown: sends a signal (after which Stop
  // no longer reports the broker's exit as unexpected; the test checks it),
  // waits for the exit, and gives the raw wait status once exited.
  void Signal(int signal_number);
  bool WaitForExit(std::chrono::milliseconds timeout) { return process_.WaitForExit(timeout); }
  int wait_status() const { return process_.wait_status(); }

 private:
  BrokerProcess() = default;

  TempDir working_dir_;
  Subprocess process_;
  std::uint16_t port_ = 0;
  std::uint16_t metrics_port_ = 0;
  bool stopped_ = false;
  bool signalled_by_test_ = false;
};

// `key=value` fields of one logfmt line (quoted values unquoted, escapes kept
// simple: \" and \\). A bare word without '=' is skipped.
std::vector<std::pair<std::string, std::string>> LogfmtFields(std::string_view line);

// The value of `key` in the first complete line of `log` holding `msg=<msg>`;
// nullopt when no such line or key.
std::optional<std::string> LogField(const std::string& log, std::string_view msg,
                                    std::string_view key);

// A loopback TCP port that was free a moment ago (bound to port 0, then
// closed). Another process could take it before the caller binds it; on a
// test machine that is rare.
std::uint16_t FreeLoopbackPort();

struct CommandResult {
  bool exited = false;  // false: it ran past the timeout and was killed
  int exit_code = -1;   // valid when exited and not signaled
  int term_signal = 0;  // non-zero when killed by a signal
  std::chrono::milliseconds elapsed{0};
  std::string stdout_text;
  std::string stderr_text;
};

// Runs `$GOPHERMQ_BIN args...` to completion in a fresh working directory
// (with `config_yaml` as its config.yaml when given), killing it after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& args,
                         const std::vector<std::pair<std::string, std::string>>& env,
                         std::chrono::milliseconds timeout,
                         const std::optional<std::string>& config_yaml = std::nullopt);

}  // namespace gophermq::testing
