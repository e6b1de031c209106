// A real browser receives a stream: deploy/web/ (the watch page), served from
// a loopback port of its own, is opened in headless Chromium; its
// EventSource reads the broker's stream across origins (broker.cors-origins)
// and the page must show exactly the messages published, in order, as text.
//
// Chromium is driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: NUL-terminated JSON on the child's fds 3 and 4),
// which needs no WebSocket client: the test polls the page's DOM with
// Runtime.evaluate until it shows what is expected, each wait bounded.
// A virtual time budget (--dump-dom --virtual-time-budget) is no fit:
// virtual time stands still while a request is in flight, and a stream always
// is (with the page streaming, a 3 s budget dumped nothing in 40 s).
//
// GOPHERMQ_WEB_DIR (from meson) names deploy/web. Chromium is $GOPHERMQ_CHROMIUM
// or `chromium` on PATH; when it is missing the test fails under meson
// (GOPHERMQ_REQUIRE_CHROMIUM=1: tools/test installs it) and is skipped when
// run by hand.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.h"

namespace gophermq::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Chromium answers with its page in 1-4 s here, also beside a CPU hog on
// both cores; the bounds leave room for a much busier machine.
constexpr seconds kBrowserStartFor(90);
// How long the page has, once open, to show what the test waits for.
constexpr seconds kPageShowsFor(60);
constexpr milliseconds kPagePollPause(100);

// --- The page's files, served from a loopback port ------------------------------

// Answers GET of the files directly in one directory (GET / is index.html)
// on 127.0.0.1, an ephemeral port, from a thread of its own; anything else
// is 404. One request per connection (Connection: close).
class PageServer {
 public:
  ~PageServer() { Stop(); }

  bool Start(std::string directory, std::string* error) {
    directory_ = std::move(directory);
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 64) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      *error = std::string("page server: ") + std::strerror(errno);
      return false;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread(&PageServer::Serve, this);
    return true;
  }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (listener_ >= 0) ::close(listener_);
    listener_ = -1;
  }

  std::uint16_t port() const { return port_; }

  // The request lines served so far, with their status, for failure messages.
  std::string Served() const {
    std::lock_guard lock(mutex_);
    return served_;
  }

 private:
  struct Connection {
    int fd;
    std::string request;
  };
  // A request's head is a few hundred bytes; past this it is no browser's.
  static constexpr std::size_t kMaxRequestHead = 16 * 1024;

  void Serve() {
    // Browsers open spare connections they may never use, so each is read
    // only when it has bytes: one idle socket must not hold the others up.
    std::vector<Connection> connections;
    while (!stop_) {
      std::vector<pollfd> fds = {{listener_, POLLIN, 0}};
      for (const Connection& connection : connections) fds.push_back({connection.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      for (std::size_t i = fds.size() - 1; i >= 1; --i) {
        if (fds[i].revents == 0) continue;
        Connection& connection = connections[i - 1];
        char buffer[4096];
        const ssize_t got = ::recv(connection.fd, buffer, sizeof buffer, 0);
        bool done = got <= 0;
        if (!done) {
          connection.request.append(buffer, static_cast<std::size_t>(got));
          if (connection.request.find("\r\n\r\n") != std::string::npos) {
            Answer(connection.fd, connection.request);
            done = true;
          } else {
            done = connection.request.size() > kMaxRequestHead;
          }
        }
        if (done) {
          ::close(connection.fd);
          connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i - 1));
        }
      }
      if (fds[0].revents & POLLIN) {
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) connections.push_back({fd, {}});
      }
    }
    for (const Connection& connection : connections) ::close(connection.fd);
  }

  void Answer(int fd, const std::string& request) {
    const std::string line = request.substr(0, request.find("\r\n"));
    std::string path;
    if (line.starts_with("GET ")) {
      path = line.substr(4, line.find(' ', 4) - 4);
      path = path.substr(0, path.find('?'));
    }
    if (path == "/") path = "/index.html";
    std::optional<std::string> contents;
    // Only plain names of files in the folder: no '/', no "..", no dot files.
    const std::string name = path.empty() ? "" : path.substr(1);
    const bool plain_name =
        !name.empty() && name[0] != '.' &&
        name.find_first_not_of(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
            std::string::npos;
    if (plain_name) {
      std::ifstream file(directory_ + "/" + name, std::ios::binary);
      if (file) contents = std::string(std::istreambuf_iterator<char>(file), {});
    }
    std::string response;
    if (contents) {
      response = Joined({"HTTP/1.1 200 OK\r\nContent-Type: ", ContentType(name),
                         "\r\nContent-Length: ", std::to_string(contents->size()),
                         "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", *contents});
    } else {
      response = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    }
    {
      std::lock_guard lock(mutex_);
      served_ += Joined({line, " -> ", contents ? "200" : "404", "\n"});
    }
    // The files are a few KiB: the socket's buffer takes them whole.
    for (std::size_t sent = 0; sent < response.size();) {
      const ssize_t wrote =
          ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (wrote <= 0) return;
      sent += static_cast<std::size_t>(wrote);
    }
  }

  static std::string_view ContentType(std::string_view name) {
    if (name.ends_with(".html")) return "text/html; charset=utf-8";
    if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
    if (name.ends_with(".css")) return "text/css; charset=utf-8";
    return "application/octet-stream";
  }

  std::string directory_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::string served_;
};

// --- Headless Chromium over the DevTools pipe ----------------------------------

// The Chromium to run: $GOPHERMQ_CHROMIUM, else `chromium` or
// `chromium-browser` on PATH; empty when there is none.
std::string ChromiumBinary() {
  std::vector<std::string> names = {"chromium", "chromium-browser"};
  if (const char* chosen = std::getenv("GOPHERMQ_CHROMIUM"); chosen != nullptr && *chosen) {
    if (std::string_view(chosen).find('/') != std::string_view::npos) {
      return ::access(chosen, X_OK) == 0 ? chosen : "";
    }
    names = {chosen};
  }
  for (const std::string& name : names) {
    if (std::string found = FindOnPath(name); !found.empty()) return found;
  }
  return {};
}

class HeadlessChromium {
 public:
  ~HeadlessChromium() { Stop(); }

  // Starts Chromium on `url` with a fresh profile; false with `error` when it
  // cannot be started.
  bool Start(const std::string& binary, const std::string& url, std::string* error) {
    if (!profile_.ok()) {
      *error = "no temporary profile directory";
      return false;
    }
    // One socket pair stands for both pipes: Chromium only reads its fd 3 and
    // writes its fd 4, and our end of a socket can be written with
    // MSG_NOSIGNAL (a browser that died makes a failed send, not a SIGPIPE).
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      *error = std::string("socketpair: ") + std::strerror(errno);
      return false;
    }
    devtools_ = pair[0];
    const std::vector<std::string> argv = {
        binary,
        "--headless=new",
        // Tests run as root in containers, where the sandbox cannot start.
        "--no-sandbox",
        "--disable-gpu",
        "--user-data-dir=" + profile_.path(),
        "--remote-debugging-pipe",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--mute-audio",
        url,
    };
    const bool spawned =
        process_.Spawn(argv, OurEnvironment(), profile_.path(), error, {pair[1], pair[1]});
    ::close(pair[1]);
    return spawned;
  }

  // Sends a DevTools command (to the page's session when `session` is not
  // empty) and waits for its answer until `deadline`: the answer's "result"
  // as JSON text, or nullopt with `error`. Events in between are ignored.
  std::optional<std::string> Command(std::string_view method, std::string_view params,
                                     std::string_view session, Clock::time_point deadline,
                                     std::string* error) {
    const int id = next_id_++;
    std::string message = Joined({R"({"id":)", std::to_string(id), R"(,"method":")", method,
                                  R"(","params":)", params.empty() ? "{}" : params});
    if (!session.empty()) message += Joined({R"(,"sessionId":")", session, "\""});
    message += std::string("}") + '\0';
    for (std::size_t sent = 0; sent < message.size();) {
      const ssize_t wrote =
          ::send(devtools_, message.data() + sent, message.size() - sent, MSG_NOSIGNAL);
      if (wrote <= 0) {
        *error = Joined({"sending ", method, ": ", std::strerror(errno)});
        return std::nullopt;
      }
      sent += static_cast<std::size_t>(wrote);
    }
    while (true) {
      for (std::size_t end; (end = received_.find('\0')) != std::string::npos;) {
        const std::string reply = received_.substr(0, end);
        received_.erase(0, end + 1);
        simdjson::dom::element root;
        if (parser_.parse(reply).get(root) != simdjson::SUCCESS) {
          *error = "not JSON from Chromium: " + reply;
          return std::nullopt;
        }
        std::int64_t reply_id = 0;
        if (root["id"].get(reply_id) != simdjson::SUCCESS || reply_id != id) continue;
        simdjson::dom::element result;
        if (root["result"].get(result) != simdjson::SUCCESS) {
          *error = Joined({method, " failed: ", reply});
          return std::nullopt;
        }
        return simdjson::minify(result);
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      pollfd readable = {devtools_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) <= 0) {
        *error = Joined({"no answer to ", method, " in time"});
        return std::nullopt;
      }
      char buffer[65536];
      const ssize_t got = ::recv(devtools_, buffer, sizeof buffer, 0);
      if (got <= 0) {
        *error = Joined({"Chromium closed its DevTools pipe while ", method, " waited"});
        return std::nullopt;
      }
      received_.append(buffer, static_cast<std::size_t>(got));
    }
  }

  // Asks Chromium to close, then SIGTERM and SIGKILL by its pid when it does
  // not; waits until its output pipes close, that is until the helper
  // processes it started (which inherit them) are gone too, so the profile
  // directory can be removed. Returns what went wrong, empty when nothing.
  std::string Stop() {
    if (process_.pid() <= 0 || stopped_) return {};
    stopped_ = true;
    std::string problems;
    std::string ignored;
    if (devtools_ >= 0) {
      Command("Browser.close", "", "", Clock::now() + seconds(5), &ignored);
      ::close(devtools_);
      devtools_ = -1;
    }
    if (!process_.WaitForExit(seconds(10))) {
      problems += "Chromium did not close on Browser.close; ";
      process_.Signal(SIGTERM);
      if (!process_.WaitForExit(seconds(10))) {
        process_.Signal(SIGKILL);
        process_.WaitForExit(seconds(5));
      }
    }
    if (!process_.WaitForOutputEnd(seconds(20))) {
      problems += "Chromium's helper processes kept running; ";
    }
    return problems;
  }

  std::string log() const { return process_.stderr_text(); }

 private:
  TempDir profile_;
  Subprocess process_;
  int devtools_ = -1;
  bool stopped_ = false;
  int next_id_ = 1;
  std::string received_;
  simdjson::dom::parser parser_;
};

// --- What the page shows ---------------------------------------------------------

struct ShownMessage {
  std::string seq;
  std::string data;
  bool operator==(const ShownMessage&) const = default;
};

std::ostream& operator<<(std::ostream& out, const ShownMessage& message) {
  return out << "#" << message.seq << " \"" << message.data << "\"";
}

struct PageView {
  std::string state;       // #status's data-state
  std::string status;      // #status's text
  std::string address;     // location.href
  std::string title;       // document.title
  std::string published;   // the publish form's output
  std::uint64_t elements;  // elements inside #messages: each item and its two spans
  std::vector<ShownMessage> messages;
};

// Evaluated in the page: what it shows, as one JSON string.
constexpr std::string_view kReadPage = R"(JSON.stringify({
  state: document.getElementById("status")?.dataset.state ?? "",
  status: document.getElementById("status")?.textContent ?? "",
  address: location.href,
  title: document.title,
  published: document.getElementById("published")?.textContent ?? "",
  elements: document.querySelectorAll("#messages *").length,
  messages: Array.from(document.querySelectorAll("#messages li"),
                       (item) => ({seq: item.dataset.seq ?? "",
                                   data: item.querySelector(".data")?.textContent ?? ""})),
}))";

// A JavaScript expression as a JSON string (for Runtime.evaluate's params).
std::string JsonString(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

class BrowserTest : public BrokerTest {
 protected:
  // The broker needs the page's origin, known once the page server runs.
  std::optional<BrokerOptions> Options() const override { return std::nullopt; }

  void TearDown() override {
    if (browser_) {
      const std::string problems = browser_->Stop();
      EXPECT_EQ(problems, "") << browser_->log();
      if (HasFailure()) std::cerr << "--- Chromium's log\n" << browser_->log();
    }
    if (HasFailure()) std::cerr << "--- page server\n" << pages_.Served();
    pages_.Stop();
    BrokerTest::TearDown();
  }

  // Finds Chromium, serves deploy/web/ and starts a broker that allows the
  // pages' origin.
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(BrokerTest::SetUp());
    chromium_ = ChromiumBinary();
    if (chromium_.empty()) {
      const char* required = std::getenv("GOPHERMQ_REQUIRE_CHROMIUM");
      if (required != nullptr && std::string_view(required) == "1") {
        FAIL() << "Chromium not found ($GOPHERMQ_CHROMIUM, else chromium or chromium-browser on "
                  "PATH): tools/test installs it (Debian package chromium)";
      }
      GTEST_SKIP() << "Chromium not found ($GOPHERMQ_CHROMIUM, else chromium or chromium-browser "
                      "on PATH): install the Debian package chromium";
    }
    const char* web_dir = std::getenv("GOPHERMQ_WEB_DIR");
    ASSERT_NE(web_dir, nullptr) << "GOPHERMQ_WEB_DIR is not set (tests/integration/meson.build)";
    std::string error;
    ASSERT_TRUE(pages_.Start(web_dir, &error)) << error;
    origin_ = Joined({"http://127.0.0.1:", std::to_string(pages_.port())});
    ASSERT_NO_FATAL_FAILURE(StartBroker(MonitoredOptions({"--broker.cors-origins=" + origin_})));
  }

  std::string BrokerUrl() const { return Joined({"http://127.0.0.1:", std::to_string(port())}); }

  // Opens `url` in a new Chromium and attaches to its page. Use with
  // ASSERT_NO_FATAL_FAILURE.
  void OpenInBrowser(const std::string& url) {
    browser_ = std::make_unique<HeadlessChromium>();
    std::string error;
    const auto started = Clock::now();
    ASSERT_TRUE(browser_->Start(chromium_, url, &error)) << error;
    const auto deadline = started + kBrowserStartFor;
    // The page's target may be listed a moment after the browser answers.
    std::string target_id;
    while (target_id.empty()) {
      const std::optional<std::string> targets =
          browser_->Command("Target.getTargets", "", "", deadline, &error);
      ASSERT_TRUE(targets) << error << "\n" << browser_->log();
      simdjson::dom::parser parser;
      simdjson::dom::array infos;
      ASSERT_EQ(parser.parse(*targets)["targetInfos"].get(infos), simdjson::SUCCESS) << *targets;
      for (simdjson::dom::element info : infos) {
        std::string_view type, id;
        if (info["type"].get(type) == simdjson::SUCCESS && type == "page" &&
            info["targetId"].get(id) == simdjson::SUCCESS) {
          target_id = id;
          break;
        }
      }
      ASSERT_TRUE(!target_id.empty() || Clock::now() < deadline) << "no page: " << *targets;
      if (target_id.empty()) std::this_thread::sleep_for(kPagePollPause);
    }
    const std::optional<std::string> attached = browser_->Command(
        "Target.attachToTarget", Joined({R"({"targetId":")", target_id, R"(","flatten":true})"}),
        "", deadline, &error);
    ASSERT_TRUE(attached) << error;
    simdjson::dom::parser parser;
    std::string_view session;
    ASSERT_EQ(parser.parse(*attached)["sessionId"].get(session), simdjson::SUCCESS) << *attached;
    session_ = session;
    std::cerr << "Chromium answered with its page in "
              << std::chrono::duration_cast<milliseconds>(Clock::now() - started).count()
              << " ms\n";
  }

  // Evaluates `expression` in the page; its value as JSON text, or nullopt
  // (with a failure) when the evaluation failed.
  std::optional<std::string> Evaluate(std::string_view expression) {
    std::string error;
    std::optional<std::string> result = browser_->Command(
        "Runtime.evaluate",
        Joined({R"({"expression":)", JsonString(expression), R"(,"returnByValue":true})"}),
        session_, Clock::now() + kPageShowsFor, &error);
    if (!result) ADD_FAILURE() << error;
    return result;
  }

  // What the page shows now; nullopt before its document is there (a
  // navigation replaces the context the evaluation ran in).
  std::optional<PageView> Read() {
    const std::optional<std::string> result = Evaluate(kReadPage);
    if (!result) return std::nullopt;
    simdjson::dom::parser parser;
    std::string_view json;
    if (parser.parse(*result)["result"]["value"].get(json) != simdjson::SUCCESS) {
      return std::nullopt;  // e.g. an exception while the page is still loading
    }
    simdjson::dom::parser page_parser;
    simdjson::dom::element page;
    PageView view;
    simdjson::dom::array messages;
    std::string_view state, status, address, title, published;
    if (page_parser.parse(json).get(page) != simdjson::SUCCESS ||
        page["state"].get(state) != simdjson::SUCCESS ||
        page["status"].get(status) != simdjson::SUCCESS ||
        page["address"].get(address) != simdjson::SUCCESS ||
        page["title"].get(title) != simdjson::SUCCESS ||
        page["published"].get(published) != simdjson::SUCCESS ||
        page["elements"].get(view.elements) != simdjson::SUCCESS ||
        page["messages"].get(messages) != simdjson::SUCCESS) {
      ADD_FAILURE() << "unexpected page reading: " << json;
      return std::nullopt;
    }
    view.state = state;
    view.status = status;
    view.address = address;
    view.title = title;
    view.published = published;
    for (simdjson::dom::element message : messages) {
      std::string_view seq, data;
      if (message["seq"].get(seq) != simdjson::SUCCESS ||
          message["data"].get(data) != simdjson::SUCCESS) {
        ADD_FAILURE() << "unexpected message reading: " << json;
        return std::nullopt;
      }
      view.messages.push_back({std::string(seq), std::string(data)});
    }
    return view;
  }

  // Polls the page (kPageShowsFor at most) until `holds` accepts what it
  // shows; that view, or the last one seen with a failure naming `what`.
  PageView WaitForPage(const std::function<bool(const PageView&)>& holds, std::string_view what) {
    const auto deadline = Clock::now() + kPageShowsFor;
    PageView last{};
    while (true) {
      const int failures_before = TestParts();
      if (std::optional<PageView> view = Read()) {
        if (holds(*view)) return *view;
        last = *view;
      }
      if (TestParts() != failures_before || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(kPagePollPause);
    }
    ADD_FAILURE() << "the page did not come to show " << what << "; it shows state \"" << last.state
                  << "\": " << last.status
                  << "\nmessages: " << ::testing::PrintToString(last.messages);
    return last;
  }

  static std::vector<ShownMessage> InSeqOrder(const std::vector<std::string>& data) {
    std::vector<ShownMessage> out;
    for (std::size_t i = 0; i < data.size(); ++i) out.push_back({std::to_string(i + 1), data[i]});
    return out;
  }

  // The page shows exactly `expected`, as text: each item one seq span and
  // one data span, nothing a message held became markup, nothing ran.
  void ExpectShowsExactly(const PageView& view, const std::vector<std::string>& expected) {
    EXPECT_EQ(view.messages, InSeqOrder(expected));
    EXPECT_EQ(view.elements, 3 * expected.size());
    EXPECT_EQ(view.title, "GopherMQ: watch a subject");
  }

  PageServer pages_;
  std::string chromium_;
  std::string origin_;
  std::unique_ptr<HeadlessChromium> browser_;
  std::string session_;
};

// Messages a page must show as they are: markup and script as text, quotes,
// line ends, non-ASCII.
const std::vector<std::string> kBeforeThePage = {
    "first, plain",
    "unicode: caf\xc3\xa9 \xe2\x82\xac \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x90\xb9",
    R"(<script>document.title = "owned"</script><b>not bold</b>)",
};
const std::vector<std::string> kAfterThePage = {
    R"(quotes: "double" and 'single' and `back`)",
    "two\nlines",
    R"(<img src=x onerror="document.title='owned'"> & &amp; <!-- -->)",
    "  spaces kept  \\ backslash",
};

TEST_F(BrowserTest, APageShowsExactlyTheMessagesItsStreamReceives) {
  const std::string subject = "browser.watch";
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  for (const std::string& data : kBeforeThePage) PublishOk(subject, data);

  ASSERT_NO_FATAL_FAILURE(
      OpenInBrowser(Joined({origin_, "/?broker=", BrokerUrl(), "&subject=", subject, "&id=", id})));
  // What was pending comes first, at once, when the stream opens.
  PageView view = WaitForPage(
      [](const PageView& page) {
        return page.state == "live" && page.messages.size() >= kBeforeThePage.size();
      },
      "the pending messages on a live stream");
  ExpectShowsExactly(view, kBeforeThePage);

  for (const std::string& data : kAfterThePage) PublishOk(subject, data);
  std::vector<std::string> all = kBeforeThePage;
  all.insert(all.end(), kAfterThePage.begin(), kAfterThePage.end());
  view = WaitForPage([&all](const PageView& page) { return page.messages.size() >= all.size(); },
                     "every message published");
  ExpectShowsExactly(view, all);
  EXPECT_EQ(view.state, "live") << view.status;
  // What the stream delivered left the queue.
  EXPECT_EQ(GetInfo(subject, id).pending, 0u);
}

TEST_F(BrowserTest, APageWithoutAnIdSubscribesAndPublishesFromItsForm) {
  const std::string subject = "browser.own";
  ASSERT_NO_FATAL_FAILURE(
      OpenInBrowser(Joined({origin_, "/?broker=", BrokerUrl(), "&subject=", subject})));
  // The page subscribes (a preflighted JSON POST), keeps the id in its
  // address and opens the stream.
  PageView view = WaitForPage([](const PageView& page) { return page.state == "live"; },
                              "a live stream of its own subscriber");
  const std::size_t id_at = view.address.find("&id=");
  ASSERT_NE(id_at, std::string::npos) << view.address;
  const std::string id = view.address.substr(id_at + 4);
  EXPECT_TRUE(IsUuidV4(id)) << view.address;
  EXPECT_EQ(GetInfo(subject, id).pending, 0u);

  PublishOk(subject, "from curl");
  view = WaitForPage([](const PageView& page) { return page.messages.size() >= 1; },
                     "the message published");
  ExpectShowsExactly(view, {"from curl"});

  // The page's publish form: another preflighted POST, then back on the stream.
  const std::string typed = "typed in the page: <i>caf\xc3\xa9</i>";
  ASSERT_TRUE(Evaluate(Joined({R"(document.getElementById("data").value = )", JsonString(typed),
                               R"(; document.querySelector("#publish button").click(); 0)"})));
  view = WaitForPage([](const PageView& page) { return page.messages.size() >= 2; },
                     "the message published from its form");
  ExpectShowsExactly(view, {"from curl", typed});
  view = WaitForPage([](const PageView& page) { return page.published == "Published."; },
                     "that its form published");
}

TEST_F(BrowserTest, APageOfAnOriginTheBrokerDoesNotAllowIsRefused) {
  // A broker that allows some other origin only: the browser refuses the
  // stream (its answer names no origin), and EventSource gives up.
  BrokerOptions other_origin;
  other_origin.flags = {"--broker.cors-origins=http://127.0.0.1:1"};
  ASSERT_NO_FATAL_FAILURE(StartBroker(other_origin));
  const std::string subject = "browser.refused";
  const std::string id = Subscribe(subject);
  ASSERT_FALSE(id.empty());
  PublishOk(subject, "never shown");
  ASSERT_NO_FATAL_FAILURE(
      OpenInBrowser(Joined({origin_, "/?broker=", BrokerUrl(), "&subject=", subject, "&id=", id})));
  const PageView view =
      WaitForPage([](const PageView& page) { return page.state == "closed"; }, "a refused stream");
  EXPECT_EQ(view.messages, std::vector<ShownMessage>{});
}

}  // namespace
}  // namespace gophermq::testing
