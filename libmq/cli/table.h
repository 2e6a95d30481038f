// Tabular output for admin tools: an aligned table on a terminal, TSV
// otherwise, or JSON (an array of objects keyed by the column names).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace mq::cli {

enum class TableFormat { automatic, table, tsv, json };
Result<TableFormat> parse_table_format(std::string_view s);

class Table {
 public:
  explicit Table(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  // automatic: table when fd is a terminal, else TSV. Numbers stay numbers in JSON
  // (a cell that is all digits, or "-" which becomes null).
  std::string render(TableFormat format, int fd) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace mq::cli
