#include "cli/table.h"

#include <nlohmann/json.hpp>

#include <charconv>

#include "cli/common.h"

namespace mq::cli {

Result<TableFormat> parse_table_format(std::string_view s) {
  if (s.empty()) return TableFormat::automatic;
  if (s == "table") return TableFormat::table;
  if (s == "tsv") return TableFormat::tsv;
  if (s == "json") return TableFormat::json;
  return Status::invalid(fmt::format("invalid --format '{}': expected table, tsv or json", s));
}

void Table::add(std::vector<Cell> row) {
  row.resize(columns_.size(), std::string());
  rows_.push_back(std::move(row));
}

namespace {

// TSV cells cannot hold tabs or newlines: they become spaces.
std::string text(const Cell& c) { return c ? *c : "-"; }

std::string tsv_cell(const Cell& c) {
  std::string out = text(c);
  for (auto& ch : out)
    if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
  return out;
}

nlohmann::ordered_json json_cell(const Cell& c, bool numeric) {
  if (!c) return nullptr;
  const std::string& s = *c;
  if (!numeric) return s;
  if (s.empty()) return nullptr;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && p == s.data() + s.size()) return v;
  return s;  // a numeric column holding text (should not happen): keep it
}

}  // namespace

std::string Table::render(TableFormat format, int fd) const {
  if (format == TableFormat::automatic) format = is_tty(fd) ? TableFormat::table : TableFormat::tsv;
  std::string out;
  if (format == TableFormat::json) {
    auto arr = nlohmann::ordered_json::array();
    for (auto& row : rows_) {
      nlohmann::ordered_json o = nlohmann::ordered_json::object();
      for (size_t i = 0; i < columns_.size(); ++i) o[columns_[i].name] = json_cell(row[i], columns_[i].numeric);
      arr.push_back(std::move(o));
    }
    // Names and hosts are validated ASCII; replace keeps a stray byte from aborting the output.
    return arr.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  }
  if (format == TableFormat::tsv) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      if (i) out += '\t';
      out += columns_[i].name;
    }
    out += '\n';
    for (auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) {
        if (i) out += '\t';
        out += tsv_cell(row[i]);
      }
      out += '\n';
    }
    return out;
  }
  std::vector<size_t> width(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) width[i] = columns_[i].name.size();
  for (auto& row : rows_)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], text(row[i]).size());
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      std::string cell = cells[i];
      if (header)
        for (auto& ch : cell) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      bool right = columns_[i].numeric;
      size_t pad = width[i] - cell.size();
      if (right) l.append(pad, ' ');
      l += cell;
      if (!right) l.append(pad, ' ');
      if (i + 1 < cells.size()) l += "  ";
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l;
    out += '\n';
  };
  std::vector<std::string> names;
  for (auto& c : columns_) names.push_back(c.name);
  line(names, true);
  for (auto& row : rows_) {
    std::vector<std::string> cells;
    for (auto& c : row) cells.push_back(text(c));
    line(cells, false);
  }
  return out;
}

}  // namespace mq::cli
