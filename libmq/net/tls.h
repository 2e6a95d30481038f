// TLS contexts (OpenSSL through Boost.Asio's ssl): the broker's certificate
// and key, and the CA clients and slaves verify the broker against.
// TLS 1.2 is the oldest version either side accepts.
#pragma once

#include <memory>
#include <string>

#include "net/asio.h"
#include "util/status.h"

#include <boost/asio/ssl.hpp>

namespace mq::net {

namespace ssl = boost::asio::ssl;

// Errors name the flag and file: "--tls-key server.key: ... (bad decrypt)".
Result<std::shared_ptr<ssl::context>> server_tls_context(const std::string& cert_file,
                                                         const std::string& key_file);
// Verifies the peer's chain against `ca_file` and its name against the host
// the client connects to (see Channel).
Result<std::shared_ptr<ssl::context>> client_tls_context(const std::string& ca_file);

// A readable reason for a TLS error ("certificate verify failed" and the like).
std::string tls_error_text(const boost::system::error_code& ec);

}  // namespace mq::net
