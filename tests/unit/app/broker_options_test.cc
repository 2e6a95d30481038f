#include "app/broker.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

namespace {

// Sets (or, nullptr, unsets) an environment variable for one scope.
class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~EnvVar() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("the default data directory: MQ_DATA, an absolute XDG_DATA_HOME, HOME, else none", "[app]") {
  mq::app::BrokerOptions opt;
  EnvVar data("MQ_DATA", nullptr), xdg("XDG_DATA_HOME", nullptr), home("HOME", "/home/u");
  CHECK(mq::app::data_dir(opt) == "/home/u/.local/share/mq");
  {
    EnvVar x("XDG_DATA_HOME", "/xdg");
    CHECK(mq::app::data_dir(opt) == "/xdg/mq");
  }
  {
    EnvVar x("XDG_DATA_HOME", "rel");  // relative: ignored (XDG base directory spec)
    CHECK(mq::app::data_dir(opt) == "/home/u/.local/share/mq");
  }
  {
    EnvVar h("HOME", nullptr);
    CHECK(mq::app::data_dir(opt).empty());  // not "./.local/share/mq"
  }
  {
    EnvVar d("MQ_DATA", "/d");
    CHECK(mq::app::data_dir(opt) == "/d");
  }
  opt.data = "/given";
  CHECK(mq::app::data_dir(opt) == "/given");
}
