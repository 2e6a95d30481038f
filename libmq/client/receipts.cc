#include "client/receipts.h"

#include <fmt/format.h>

namespace mq::client {

void append_receipt_line(const Receipt& r, std::string& out) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{}\t{}\t{}\t", r.line, r.id == storage::MessageId{} ? "-" : storage::id_to_hex(r.id),
                 r.broker.empty() ? "-" : r.broker);
  if (r.queue) fmt::format_to(it, "{}\t", *r.queue); else out.append("-\t");
  if (r.offset) fmt::format_to(it, "{}\t", *r.offset); else out.append("-\t");
  out.append(r.status);
  out.push_back('\n');
}

}  // namespace mq::client
