#include "cli/input_reader.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "cli/base64.h"
#include "cli/signals.h"

namespace mq::cli {

namespace {
constexpr size_t kChunk = 256 * 1024;

std::string json_type(const nlohmann::json& v) { return v.type_name(); }
}  // namespace

Status parse_json_line(std::string_view line, InputItem& item) {
  // The parser takes a NUL byte for the end of its input: what follows would be
  // ignored. JSON has no raw NUL outside strings (and none inside), so it is an error.
  if (auto nul = line.find('\0'); nul != std::string_view::npos)
    return Status::invalid(fmt::format("invalid JSON: column {}: a NUL byte", nul + 1));
  nlohmann::json j;
  // A name repeated in the top-level object, or in its props / props_b64, is an
  // error, not "last wins" (the parser keeps only the last).
  std::vector<std::string> keys, sub_keys;
  std::string repeated, top;
  auto seen = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    if (ev != nlohmann::json::parse_event_t::key || !parsed.is_string() || !repeated.empty()) return true;
    const auto& k = parsed.get_ref<const std::string&>();
    if (depth == 1) {
      if (std::find(keys.begin(), keys.end(), k) != keys.end()) repeated = fmt::format("\"{}\"", k);
      else keys.push_back(k);
      top = k;
      sub_keys.clear();
    } else if (depth == 2 && (top == "props" || top == "props_b64")) {
      if (std::find(sub_keys.begin(), sub_keys.end(), k) != sub_keys.end())
        repeated = fmt::format("property \"{}\" in \"{}\"", k, top);
      else sub_keys.push_back(k);
    }
    return true;
  };
  try {
    j = nlohmann::json::parse(line.begin(), line.end(), seen);
  } catch (const nlohmann::json::exception& e) {
    // parse_error: "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> keep
    // from "column"; out_of_range (a number beyond a double, 1e999): "[json.exception.out_of_range.406]
    // number overflow parsing '1e999'" -> keep from the first space.
    std::string what = e.what();
    auto col = what.find("column");
    if (col != std::string::npos) what = what.substr(col);
    else if (auto sp = what.find("] "); what.rfind("[json.exception.", 0) == 0 && sp != std::string::npos)
      what = what.substr(sp + 2);
    return Status::invalid("invalid JSON: " + what);
  }
  if (!j.is_object()) return Status::invalid(fmt::format("expected a JSON object, got {}", json_type(j)));
  if (!repeated.empty()) return Status::invalid(fmt::format("{} given twice", repeated));
  auto body = j.find("body");
  auto b64 = j.find("body_b64");
  if (body != j.end() && b64 != j.end()) return Status::invalid("both \"body\" and \"body_b64\" given");
  if (body != j.end()) {
    if (!body->is_string()) return Status::invalid(fmt::format("\"body\" must be a string, got {}", json_type(*body)));
    item.body = body->get_ref<const std::string&>();
  } else if (b64 != j.end()) {
    if (!b64->is_string())
      return Status::invalid(fmt::format("\"body_b64\" must be a string, got {}", json_type(*b64)));
    auto d = base64_decode(b64->get_ref<const std::string&>());
    if (!d) return Status::invalid("body_b64 is not valid base64: " + d.status().message());
    item.body = std::move(*d);
  } else {
    return Status::invalid("missing \"body\" or \"body_b64\"");
  }
  for (std::string name : {"key", "tag"}) {
    auto& field = name == "key" ? item.key : item.tag;
    auto it = j.find(name);
    auto b = j.find(name + "_b64");
    if (it != j.end() && !it->is_null() && b != j.end() && !b->is_null())
      return Status::invalid(fmt::format("both \"{}\" and \"{}_b64\" given", name, name));
    if (it != j.end() && !it->is_null()) {
      if (!it->is_string()) return Status::invalid(fmt::format("\"{}\" must be a string, got {}", name, json_type(*it)));
      field = it->get<std::string>();
    } else if (b != j.end() && !b->is_null()) {
      if (!b->is_string())
        return Status::invalid(fmt::format("\"{}_b64\" must be a string, got {}", name, json_type(*b)));
      auto d = base64_decode(b->get_ref<const std::string&>());
      if (!d) return Status::invalid(fmt::format("{}_b64 is not valid base64: {}", name, d.status().message()));
      field = std::move(*d);
    }
  }
  // props: names and values as strings; props_b64: both in base64 (binary ones). A name
  // may be given once over both (decoded: "YQ==" and "YQ" are one name).
  size_t own = item.props ? item.props->size() : 0;  // the caller's, before this line's
  for (bool b64 : {false, true}) {
    const char* name = b64 ? "props_b64" : "props";
    auto props = j.find(name);
    if (props == j.end() || props->is_null()) continue;
    if (!props->is_object()) return Status::invalid(fmt::format("\"{}\" must be an object, got {}", name, json_type(*props)));
    storage::Properties p = item.props ? std::move(*item.props) : storage::Properties{};
    for (auto& [k, v] : props->items()) {
      if (!v.is_string())
        return Status::invalid(fmt::format("property \"{}\" must be a string, got {}", k, json_type(v)));
      std::string key = k, value = v.get<std::string>();
      if (b64) {
        auto dk = base64_decode(key);
        auto dv = base64_decode(value);
        if (!dk || !dv) return Status::invalid(fmt::format("props_b64 \"{}\" is not valid base64", k));
        key = std::move(*dk);
        value = std::move(*dv);
      }
      if (key.empty()) return Status::invalid("property with an empty name");
      if (std::any_of(p.begin() + static_cast<std::ptrdiff_t>(own), p.end(), [&](auto& e) { return e.first == key; }))
        return Status::invalid(fmt::format("property \"{}\" given twice", key));
      p.emplace_back(std::move(key), std::move(value));
    }
    item.props = std::move(p);
  }
  item.origin = {};
  for (const char* name : {"topic", "id"})
    if (auto it = j.find(name); it != j.end() && it->is_string())
      (std::string_view(name) == "topic" ? item.origin.topic : item.origin.id) = it->get<std::string>();
  for (const char* name : {"queue", "offset"})
    if (auto it = j.find(name); it != j.end() && it->is_number_unsigned())
      (std::string_view(name) == "queue" ? item.origin.queue : item.origin.offset) = it->get<uint64_t>();
  return Status::ok();
}

InputReader::InputReader(int fd, InputMode mode, size_t max_item, std::string name)
    : fd_(fd), name_(std::move(name)), mode_(mode), max_item_(max_item) {}

bool InputReader::fill() {
  if (eof_) return false;
  if (pos_ > 0 && (pos_ >= buf_.size() / 2 || buf_.size() + kChunk > buf_.capacity())) {
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
  }
  size_t old = buf_.size();
  buf_.resize(old + kChunk);
  for (;;) {
    ssize_t n = ::read(fd_, buf_.data() + old, kChunk);
    if (n < 0 && errno == EINTR) {
      if (stop_requested()) {
        interrupted_ = true;
        eof_ = true;
        buf_.resize(old);
        return false;
      }
      continue;
    }
    if (n < 0) {
      status_ = errno == EBADF ? Status::io_error(fmt::format("cannot read {}: it is closed", name_))
                               : Status::from_errno(fmt::format("cannot read {}", name_), errno);
      eof_ = true;
      buf_.resize(old);
      return false;
    }
    buf_.resize(old + static_cast<size_t>(n));
    if (n == 0) eof_ = true;
    return n > 0;
  }
}

bool InputReader::ready() {
  if (eof_ || done_) return true;
  if (mode_ != InputMode::raw) {
    char delim = mode_ == InputMode::nul ? '\0' : '\n';
    if (std::memchr(buf_.data() + scan_, delim, buf_.size() - scan_) != nullptr) return true;
  }
  return wait_ready(0);
}

bool InputReader::wait_ready(int timeout_ms) {
  if (eof_ || done_) return true;
  struct pollfd p {fd_, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

bool InputReader::next(InputItem& out) {
  out = InputItem{};
  if (mode_ == InputMode::raw) {
    if (done_) return false;
    while (fill()) {
      if (buf_.size() - pos_ > max_item_) break;
    }
    if (!status_.is_ok() || interrupted_) return false;
    done_ = true;
    out.line = 1;
    if (buf_.size() - pos_ > max_item_) {
      out.error = Status::invalid(fmt::format("input: longer than the maximum message size of {} bytes", max_item_));
      // Drain the rest so the producer of the pipe is not blocked forever.
      while (fill()) buf_.clear(), pos_ = scan_ = 0;
      return true;
    }
    out.body.assign(buf_, pos_);
    return true;
  }
  return next_delimited(mode_ == InputMode::nul ? '\0' : '\n', out);
}

bool InputReader::next_delimited(char delim, InputItem& out) {
  // A JSON line may spell each byte of a body as \u0001 (6 bytes); the key and the
  // properties come on top. The decoded body is checked against the limit by the caller.
  size_t limit = mode_ == InputMode::json ? max_item_ * 6 + (1u << 20) : max_item_;
  bool too_long = false;
  for (;;) {
    const char* start = buf_.data() + scan_;
    const char* hit = static_cast<const char*>(std::memchr(start, delim, buf_.size() - scan_));
    size_t end;
    bool have = false;
    if (hit != nullptr) {
      end = static_cast<size_t>(hit - buf_.data());
      have = true;
    } else {
      end = buf_.size();
      scan_ = end;
      if (end - pos_ > limit) {
        // Too long: drop what we have and keep skipping to the delimiter.
        too_long = true;
        pos_ = scan_ = buf_.size();
      }
      if (fill()) continue;
      if (!status_.is_ok() || interrupted_) return false;
      // fill() may have moved the data: look at buf_/pos_ afresh.
      if (buf_.size() == pos_ && !too_long) return false;  // clean end of input
      end = buf_.size();
      have = true;  // last item without a delimiter
    }
    if (!have) continue;
    ++line_;
    out.line = line_;
    std::string_view item(buf_.data() + pos_, end - pos_);
    pos_ = scan_ = std::min(end + 1, buf_.size());
    if (too_long || item.size() > limit) {
      out.error = mode_ == InputMode::json
                      ? Status::invalid(fmt::format("line {}: longer than {} bytes, more than a message of at most {} bytes "
                                                    "takes in JSON", line_, limit, max_item_))
                      : Status::invalid(fmt::format("line {}: longer than the maximum message size of {} bytes", line_, max_item_));
      return true;
    }
    if (mode_ == InputMode::json) {
      // A blank line is malformed, not skipped as jq would: every line has its receipt
      // (FAILED), so that receipts line up with the input.
      if (item.find_first_not_of(" \t\r") == std::string_view::npos) {
        out.error = Status::invalid(fmt::format("line {}: empty line, expected a JSON object", line_));
        return true;
      }
      Status s = parse_json_line(item, out);
      if (!s) out.error = Status::invalid(fmt::format("line {}: {}", line_, s.message()));
      return true;
    }
    out.body.assign(item);
    return true;
  }
}

}  // namespace mq::cli
