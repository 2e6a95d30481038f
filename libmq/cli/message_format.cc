#include "cli/message_format.h"

#include <cctype>

#include "cli/base64.h"
#include "cli/json_writer.h"
#include "util/parse.h"

namespace mq::cli {

Result<MessageFormat> MessageFormat::parse(std::string_view spec, bool nul) {
  MessageFormat f;
  f.terminator_ = nul ? '\0' : '\n';
  if (spec == "body") return f;
  if (spec == "json") {
    f.kind_ = Kind::json;
    return f;
  }
  f.kind_ = Kind::templ;
  std::string lit;
  auto push = [&](Field field, std::string text = {}) {
    if (!lit.empty()) f.pieces_.push_back({Field::literal, std::move(lit)});
    lit.clear();
    f.pieces_.push_back({field, std::move(text)});
  };
  auto bad = [&](size_t pos, std::string_view why) {
    return Status::invalid(fmt::format("invalid format '{}': {} at position {} (expected body, json or a "
                                       "template with %t %b %q %o %i %k %T %s %p{{NAME}} %%)",
                                       spec, why, pos + 1));
  };
  for (size_t i = 0; i < spec.size(); ++i) {
    char c = spec[i];
    if (c == '\\') {
      if (i + 1 >= spec.size()) return bad(i, "lone '\\' at the end");
      char e = spec[++i];
      switch (e) {
        case 't': lit.push_back('\t'); break;
        case 'n': lit.push_back('\n'); break;
        case 'r': lit.push_back('\r'); break;
        case '0': lit.push_back('\0'); break;
        case '\\': lit.push_back('\\'); break;
        default: return bad(i - 1, fmt::format("unknown escape '\\{}'", e));
      }
      continue;
    }
    if (c != '%') {
      lit.push_back(c);
      continue;
    }
    if (i + 1 >= spec.size()) return bad(i, "lone '%' at the end");
    char d = spec[++i];
    switch (d) {
      case '%': lit.push_back('%'); break;
      case 't': push(Field::topic); break;
      case 'b': push(Field::broker); break;
      case 'q': push(Field::queue); break;
      case 'o': push(Field::offset); break;
      case 'i': push(Field::id); break;
      case 'k': push(Field::key); break;
      case 'T': push(Field::tag); break;
      case 's': push(Field::body); break;
      case 'p': {
        if (i + 1 >= spec.size() || spec[i + 1] != '{') return bad(i - 1, "expected '{' after %p");
        auto close = spec.find('}', i + 2);
        if (close == std::string_view::npos) return bad(i - 1, "missing '}' after %p{");
        auto name = spec.substr(i + 2, close - i - 2);
        if (name.empty()) return bad(i - 1, "empty property name in %p{}");
        push(Field::prop, std::string(name));
        i = close;
        break;
      }
      default: return bad(i - 1, fmt::format("unknown directive '%{}'", d));
    }
  }
  if (!lit.empty()) f.pieces_.push_back({Field::literal, std::move(lit)});
  // Nothing of the message in it: a mistyped name (JSON, Body, jsonl) would print that
  // text once per message.
  bool any_field = false;
  for (auto& p : f.pieces_) any_field = any_field || p.field != Field::literal;
  if (!any_field) {
    std::string lower(spec);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string hint = lower.find("json") != std::string::npos   ? " (did you mean json?)"
                       : lower.find("body") != std::string::npos ? " (did you mean body?)"
                                                                 : "";
    return Status::invalid(fmt::format("invalid format '{}': not body or json, and as a template it has no "
                                       "% directive (%t %b %q %o %i %k %T %s %p{{NAME}}){}",
                                       spec, hint));
  }
  return f;
}

void append_message_json(const storage::RecordView& m, std::string_view broker, std::string& out) {
  out.append("{\"topic\":");
  append_json_string(out, m.topic);
  if (!broker.empty()) {
    out.append(",\"broker\":");
    append_json_string(out, broker);
  }
  out.append(",\"queue\":");
  append_json_uint(out, m.queue);
  out.append(",\"offset\":");
  append_json_uint(out, m.offset);
  out.append(",\"id\":\"");
  out.append(storage::id_to_hex(m.id));
  out.push_back('"');
  // Key, tag, property names and values as strings when valid UTF-8, else in
  // base64 (key_b64, tag_b64, props_b64 with both name and value encoded), so
  // that mq-replay -i and mq-send --json get back the same bytes.
  auto text = [&out](const char* name, std::string_view v) {
    bool utf8 = is_valid_utf8(v);
    out.append(",\"");
    out.append(name);
    out.append(utf8 ? "\":" : "_b64\":\"");
    if (utf8) {
      append_json_string(out, v);
    } else {
      base64_encode(v, out);
      out.push_back('"');
    }
  };
  text("key", m.key);
  text("tag", m.tag);
  out.append(",\"props\":{");
  storage::Properties props;
  bool binary = false;
  if (!m.props.empty() && storage::decode_props(m.props, props)) {
    bool first = true;
    for (auto& [k, v] : props) {
      if (!is_valid_utf8(k) || !is_valid_utf8(v)) {
        binary = true;
        continue;
      }
      if (!first) out.push_back(',');
      first = false;
      append_json_key(out, k);
      append_json_string(out, v);
    }
  }
  out.push_back('}');
  if (binary) {
    out.append(",\"props_b64\":{");
    bool first = true;
    for (auto& [k, v] : props) {
      if (is_valid_utf8(k) && is_valid_utf8(v)) continue;
      if (!first) out.push_back(',');
      first = false;
      out.push_back('"');
      base64_encode(k, out);
      out.append("\":\"");
      base64_encode(v, out);
      out.push_back('"');
    }
    out.push_back('}');
  }
  out.append(",\"born\":\"");
  out.append(format_time(m.born_ms));
  out.append("\",\"stored\":\"");
  out.append(format_time(m.store_ms));
  out.append("\",\"reconsume\":");
  append_json_uint(out, m.reconsume);
  if (is_valid_utf8(m.body)) {
    out.append(",\"body\":");
    append_json_string(out, m.body);
  } else {
    out.append(",\"body_b64\":\"");
    base64_encode(m.body, out);
    out.push_back('"');
  }
  out.push_back('}');
}

void MessageFormat::append(const storage::RecordView& m, std::string_view broker, std::string& out) const {
  switch (kind_) {
    case Kind::body:
      out.append(m.body);
      out.push_back(terminator_);
      return;
    case Kind::json:
      append_message_json(m, broker, out);
      out.push_back('\n');
      return;
    case Kind::templ: break;
  }
  for (const auto& p : pieces_) {
    switch (p.field) {
      case Field::literal: out.append(p.text); break;
      case Field::topic: out.append(m.topic); break;
      case Field::broker: out.append(broker); break;
      case Field::queue: append_json_uint(out, m.queue); break;
      case Field::offset: append_json_uint(out, m.offset); break;
      case Field::id: out.append(storage::id_to_hex(m.id)); break;
      case Field::key: out.append(m.key); break;
      case Field::tag: out.append(m.tag); break;
      case Field::body: out.append(m.body); break;
      case Field::prop: {
        std::string_view v;
        if (m.prop(p.text, v)) out.append(v);
        break;
      }
    }
  }
}

}  // namespace mq::cli
