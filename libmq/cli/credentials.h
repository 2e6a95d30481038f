// A client's security settings from its flags and environment: TLS
// (--tls-ca FILE or MQ_TLS_CA) and credentials (--credentials FILE, else
// MQ_USER and MQ_PASSWORD). A credentials file holds two lines:
//   user NAME
//   password SECRET
// and is refused unless it belongs to the caller and no one else may read it.
// A user name is refused when it holds whitespace (the broker's --auth file
// splits its lines on it: "user alice s3cret" would make "alice s3cret" the
// name, sent and logged as such), a control character, or more than
// kMaxUserName bytes; the error does not repeat the name.
// MQ_PASSWORD is removed from the environment once read, so commands run by
// mq-consume --exec do not inherit it; the process keeps what it read for
// that MQ_USER, so a later call (mq-send retrying its first contact) gets the
// same credentials. Call from one thread at a time: it changes the environment.
#pragma once

#include <string>
#include <string_view>

#include "cli/common.h"
#include "net/channel.h"
#include "util/status.h"

namespace mq::cli {

inline constexpr size_t kMaxUserName = 255;

// From CommonOptions::credentials and ::tls_ca, and the environment.
Result<net::ClientSecurity> client_security(const CommonOptions& flags);

// The user and password in a credentials file (checks its owner and mode, and the user name).
Result<std::pair<std::string, std::string>> read_credentials(const std::string& path);

// Why `name` cannot be a user name ("contains whitespace", "is empty"...), or "" when it can.
std::string_view user_name_problem(std::string_view name);

}  // namespace mq::cli
