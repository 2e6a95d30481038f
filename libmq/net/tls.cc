#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <spdlog/fmt/fmt.h>

namespace mq::net {

using error_code = boost::system::error_code;

namespace {

constexpr auto kOptions = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;

Status file_error(std::string_view flag, const std::string& file, const error_code& ec) {
  return Status::invalid(fmt::format("{} {}: {}", flag, file, tls_error_text(ec)));
}

}  // namespace

std::string tls_error_text(const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    // "error:0A000086:SSL routines::certificate verify failed" -> the reason only.
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
    std::string_view s(buf);
    auto colon = s.rfind(':');
    std::string_view reason = colon == std::string_view::npos ? s : s.substr(colon + 1);
    if (!reason.empty()) return std::string(reason);
  }
  if (ec == ssl::error::stream_truncated) return "connection closed during TLS";
  return ec.message();
}

Result<std::shared_ptr<ssl::context>> server_tls_context(const std::string& cert_file,
                                                         const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(kOptions);
  error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) return file_error("--tls-cert", cert_file, ec);
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec && tls_error_text(ec) == "key values mismatch")
    return Status::invalid(fmt::format("--tls-key {} does not belong to --tls-cert {}", key_file, cert_file));
  if (ec) return file_error("--tls-key", key_file, ec);
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return Status::invalid(fmt::format("--tls-key {} does not belong to --tls-cert {}", key_file, cert_file));
  // Served anyway (it may be renewed in place), but every client will refuse it: say so now.
  if (X509* cert = SSL_CTX_get0_certificate(ctx->native_handle())) {
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
      spdlog::warn("--tls-cert {} has expired: clients will refuse it (certificate has expired)", cert_file);
    else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
      spdlog::warn("--tls-cert {} is not valid yet: clients will refuse it", cert_file);
  }
  return ctx;
}

Result<std::shared_ptr<ssl::context>> client_tls_context(const std::string& ca_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(kOptions);
  error_code ec;
  ctx->load_verify_file(ca_file, ec);
  if (ec) return file_error("--tls-ca", ca_file, ec);
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

}  // namespace mq::net
