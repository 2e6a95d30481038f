// Tabular output for admin tools (mq-offset): an aligned table on a terminal,
// TSV with one header line otherwise, or JSON (one array of objects keyed by
// the column names). Cells are strings; a column declared numeric prints its
// cells right-aligned in a table and as JSON numbers ("-" becomes null).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace mq::cli {

enum class TableFormat { automatic, table, tsv, json };
// "" = automatic; else table, tsv or json.
Result<TableFormat> parse_table_format(std::string_view s);

struct Column {
  Column(const char* n, bool num = false) : name(n), numeric(num) {}  // NOLINT: implicit on purpose
  std::string name;
  bool numeric = false;
};

// A cell; std::nullopt is "nothing to show": "-" in a table or TSV, null in JSON.
using Cell = std::optional<std::string>;

class Table {
 public:
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  // A row has one cell per column (missing cells print empty, extra ones are dropped).
  void add(std::vector<Cell> row);
  size_t size() const { return rows_.size(); }
  // automatic: table when fd is a terminal, else TSV.
  std::string render(TableFormat format, int fd) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<Cell>> rows_;
};

}  // namespace mq::cli
