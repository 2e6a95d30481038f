#include "storage/checkpoint.h"

#include <charconv>

#include "util/crc32c.h"

namespace mq::storage {

Status write_checkpoint(FileSystem& fsys, const fs::path& path, const Checkpoint& c) {
  std::string text = c.queues_digest
                         ? fmt::format("mq-checkpoint 2 {} {} {:016x}", c.log_pos, c.clean ? 1 : 0, *c.queues_digest)
                         : fmt::format("mq-checkpoint 1 {} {}", c.log_pos, c.clean ? 1 : 0);
  text += fmt::format(" {:08x}\n", crc32c(text));
  return replace_file(fsys, path, text);
}

std::optional<Checkpoint> read_checkpoint(FileSystem& fsys, const fs::path& path, std::string* why) {
  auto set = [&](std::string w) {
    if (why) *why = std::move(w);
    return std::nullopt;
  };
  if (!fsys.exists(path)) return set("no checkpoint");
  auto data = read_whole(fsys, path);
  if (!data) return set(data.status().to_string());
  std::string_view s = *data;
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  size_t sp = s.rfind(' ');
  if (sp == std::string_view::npos) return set("checkpoint: malformed");
  std::string_view body = s.substr(0, sp), crc_hex = s.substr(sp + 1);
  uint32_t crc = 0;
  auto [p, ec] = std::from_chars(crc_hex.data(), crc_hex.data() + crc_hex.size(), crc, 16);
  if (ec != std::errc() || p != crc_hex.data() + crc_hex.size() || crc != crc32c(body))
    return set("checkpoint: checksum mismatch");
  constexpr std::string_view kPrefix1 = "mq-checkpoint 1 ", kPrefix2 = "mq-checkpoint 2 ";
  bool v2 = body.substr(0, kPrefix2.size()) == kPrefix2;
  if (!v2 && body.substr(0, kPrefix1.size()) != kPrefix1) return set("checkpoint: unknown version");
  body.remove_prefix(kPrefix1.size());
  Checkpoint c;
  if (v2) {
    size_t last = body.rfind(' ');
    if (last == std::string_view::npos) return set("checkpoint: malformed");
    std::string_view hex = body.substr(last + 1);
    uint64_t d = 0;
    auto [pd, ecd] = std::from_chars(hex.data(), hex.data() + hex.size(), d, 16);
    if (ecd != std::errc() || pd != hex.data() + hex.size()) return set("checkpoint: bad queues digest");
    c.queues_digest = d;
    body = body.substr(0, last);
  }
  auto [q, ec2] = std::from_chars(body.data(), body.data() + body.size(), c.log_pos);
  if (ec2 != std::errc()) return set("checkpoint: bad position");
  std::string_view rest(q, static_cast<size_t>(body.data() + body.size() - q));
  if (rest == " 1")
    c.clean = true;
  else if (rest == " 0")
    c.clean = false;
  else
    return set("checkpoint: bad clean flag");
  return c;
}

}  // namespace mq::storage
