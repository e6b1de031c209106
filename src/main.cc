// gophermq: an in-memory HTTP publish/subscribe broker. `gophermq broker`
// starts it, as with the Go original.
#include <unistd.h>

#include <cstdio>
#include <string_view>
#include <vector>

#include "gophermq/broker.h"
#include "gophermq/config/config.h"
#include "gophermq_version.h"

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  gophermq::ConfigLoad load = gophermq::load_config(args, environ);
  if (!load.ok()) {
    std::fprintf(stderr, "%s\n", load.error.c_str());
    return 2;
  }
  switch (load.command) {
    case gophermq::Command::help:
      std::fputs(gophermq::usage_text().c_str(), stdout);
      return 0;
    case gophermq::Command::version:
      std::printf("gophermq %s\n", GOPHERMQ_VERSION);
      return 0;
    case gophermq::Command::broker:
      break;
  }
  try {
    return gophermq::run_broker(load.config);
  } catch (const std::exception& failure) {
    std::fprintf(stderr, "level=error msg=\"cannot start\" error=\"%s\"\n", failure.what());
    return 1;
  }
}
