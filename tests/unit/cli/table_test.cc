#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/table.h"

using mq::cli::Table;
using mq::cli::TableFormat;

namespace {
Table sample() {
  Table t({"topic", {"queue", true}, {"lag", true}, "age"});
  t.add({"orders", "0", "12", "1.5s"});
  t.add({"42", "1", std::nullopt, std::nullopt});
  return t;
}
}  // namespace

TEST_CASE("table format names parse and unknown ones are rejected", "[cli]") {
  CHECK(*mq::cli::parse_table_format("") == TableFormat::automatic);
  CHECK(*mq::cli::parse_table_format("table") == TableFormat::table);
  CHECK(*mq::cli::parse_table_format("tsv") == TableFormat::tsv);
  CHECK(*mq::cli::parse_table_format("json") == TableFormat::json);
  auto bad = mq::cli::parse_table_format("yaml");
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == mq::Code::invalid_argument);
}

TEST_CASE("table tsv has one header line then one line per row", "[cli]") {
  CHECK(sample().render(TableFormat::tsv, -1) ==
        "topic\tqueue\tlag\tage\n"
        "orders\t0\t12\t1.5s\n"
        "42\t1\t-\t-\n");
}

TEST_CASE("table tsv cells never carry tabs or newlines", "[cli]") {
  Table t({"a", "b"});
  t.add({"x\ty", "p\nq"});
  CHECK(t.render(TableFormat::tsv, -1) == "a\tb\nx y\tp q\n");
}

TEST_CASE("table rows are padded or cut to the column count", "[cli]") {
  Table t({"a", "b"});
  t.add({"1"});
  t.add({"1", "2", "3"});
  CHECK(t.render(TableFormat::tsv, -1) == "a\tb\n1\t\n1\t2\n");
}

TEST_CASE("table aligns columns, numbers to the right, header upper case", "[cli]") {
  CHECK(sample().render(TableFormat::table, -1) ==
        "TOPIC   QUEUE  LAG  AGE\n"
        "orders      0   12  1.5s\n"
        "42          1    -  -\n");
}

TEST_CASE("table json keeps names as strings and numeric columns as numbers or null", "[cli]") {
  auto j = nlohmann::json::parse(sample().render(TableFormat::json, -1));
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 2);
  CHECK(j[0]["topic"] == "orders");
  CHECK(j[0]["queue"] == 0);
  CHECK(j[0]["lag"] == 12);
  CHECK(j[0]["age"] == "1.5s");
  CHECK(j[1]["topic"] == "42");  // a topic named like a number stays a string
  CHECK(j[1]["lag"].is_null());
  CHECK(j[1]["age"].is_null());  // nothing to show is null in every column
}

TEST_CASE("table cells that are a dash are text, not nothing", "[cli]") {
  Table t({"topic", {"n", true}});
  t.add({"-", std::nullopt});  // a topic may be named "-"
  auto j = nlohmann::json::parse(t.render(TableFormat::json, -1));
  CHECK(j[0]["topic"] == "-");
  CHECK(j[0]["n"].is_null());
  CHECK(t.render(TableFormat::tsv, -1) == "topic\tn\n-\t-\n");
}

TEST_CASE("table json of no rows is an empty array", "[cli]") {
  Table t({"a"});
  CHECK(t.render(TableFormat::json, -1) == "[]\n");
}

TEST_CASE("table automatic format is tsv when the fd is not a terminal", "[cli]") {
  Table t({"a"});
  t.add({"1"});
  CHECK(t.render(TableFormat::automatic, -1) == "a\n1\n");
}
