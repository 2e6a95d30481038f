#include "cli/table.h"

#include <nlohmann/json.hpp>

#include "cli/common.h"

namespace mq::cli {

Result<TableFormat> parse_table_format(std::string_view s) {
  if (s.empty()) return TableFormat::automatic;
  if (s == "table") return TableFormat::table;
  if (s == "tsv") return TableFormat::tsv;
  if (s == "json") return TableFormat::json;
  return Status::invalid(fmt::format("invalid --format '{}': expected table, tsv or json", s));
}

namespace {
bool numeric(const std::string& s) {
  if (s.empty() || s.size() > 18) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}
}  // namespace

std::string Table::render(TableFormat format, int fd) const {
  if (format == TableFormat::automatic) format = is_tty(fd) ? TableFormat::table : TableFormat::tsv;
  std::string out;
  if (format == TableFormat::json) {
    auto arr = nlohmann::ordered_json::array();
    for (auto& row : rows_) {
      nlohmann::ordered_json o;
      for (size_t i = 0; i < columns_.size() && i < row.size(); ++i) {
        auto& c = row[i];
        if (c == "-")
          o[columns_[i]] = nullptr;
        else if (numeric(c))
          o[columns_[i]] = std::stoll(c);
        else
          o[columns_[i]] = c;
      }
      arr.push_back(std::move(o));
    }
    return arr.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  if (format == TableFormat::tsv) {
    for (auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) {
        if (i) out += '\t';
        out += row[i];
      }
      out += '\n';
    }
    return out;
  }
  std::vector<size_t> width(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) width[i] = columns_[i].size();
  for (auto& row : rows_)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      std::string cell = header ? cells[i] : cells[i];
      if (header)
        for (auto& ch : cell) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      bool right = !header && numeric(cells[i]);
      size_t pad = width[i] - cells[i].size();
      if (right) out.append(pad, ' ');
      out += cell;
      if (i + 1 < cells.size()) {
        if (!right) out.append(pad, ' ');
        out += "  ";
      }
    }
    out += '\n';
  };
  line(columns_, true);
  for (auto& row : rows_) line(row, false);
  return out;
}

}  // namespace mq::cli
