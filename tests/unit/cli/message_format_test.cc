#include <catch2/catch.hpp>

#include <string>

#include "cli/message_format.h"

using namespace mq;

namespace {

struct Rec {
  std::string buf;
  storage::RecordView rv;
};

void make(Rec& r) {
  storage::Message m;
  m.topic = "orders";
  m.queue = 2;
  m.offset = 17;
  m.key = "K";
  m.tag = "T";
  m.props = {{"region", "eu"}};
  m.body = "hello";
  storage::encode_record(m, r.buf);
  REQUIRE(storage::decode_record(r.buf, r.rv) == storage::DecodeResult::ok);
}

std::string render(std::string_view spec, bool nul = false) {
  Rec r;
  make(r);
  auto f = cli::MessageFormat::parse(spec, nul);
  REQUIRE(f);
  std::string out;
  f->append(r.rv, "10.0.0.1:9876", out);
  return out;
}

}  // namespace

TEST_CASE("the body format ends each body with a newline or NUL", "[cli]") {
  CHECK(render("body") == "hello\n");
  CHECK(render("body", true) == std::string("hello\0", 6));
}

TEST_CASE("templates expand every directive and escape", "[cli]") {
  CHECK(render("%t %q %o %k %T %s") == "orders 2 17 K T hello");
  CHECK(render("%b/%q/%o") == "10.0.0.1:9876/2/17");
  CHECK(render("%p{region}|%p{missing}|100%%") == "eu||100%");
  CHECK(render("%s\\t%o\\n") == "hello\t17\n");
  CHECK(render("%s\\0") == std::string("hello\0", 6));
  CHECK(render("a\\\\b%o") == "a\\b17");
  CHECK(render("%i").size() == 32);
}

TEST_CASE("bad templates are usage errors naming the problem", "[cli]") {
  auto err = [](std::string_view spec) {
    auto f = cli::MessageFormat::parse(spec, false);
    REQUIRE_FALSE(f);
    CHECK(f.status().code() == Code::invalid_argument);
    return f.status().message();
  };
  CHECK(err("%x").find("unknown directive '%x' at position 1") != std::string::npos);
  CHECK(err("ab%").find("lone '%' at the end") != std::string::npos);
  CHECK(err("%p{abc").find("missing '}'") != std::string::npos);
  CHECK(err("%pabc").find("expected '{' after %p") != std::string::npos);
  CHECK(err("%p{}").find("empty property name") != std::string::npos);
  CHECK(err("\\q").find("unknown escape '\\q'") != std::string::npos);
  // nothing of the message: a mistyped format name, printed once per message
  CHECK(err("JSON").find("as a template it has no % directive") != std::string::npos);
  CHECK(err("JSON").find("did you mean json?") != std::string::npos);
  CHECK(err("Body").find("did you mean body?") != std::string::npos);
  CHECK(err("-\\n").find("no % directive") != std::string::npos);
}
