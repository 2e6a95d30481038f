// Status and Result<T>: how every fallible call in libmq reports failure.
#pragma once

#include <fmt/format.h>

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mq {

enum class Code {
  ok,
  invalid_argument,  // bad user input or configuration: exit status 2
  not_found,
  corruption,
  io_error,
  disk_full,
  unavailable,  // peer unreachable, connection lost, role does not allow it
  timeout,
  permission_denied,
  limit_reached,  // a configured limit (--max-topics) refuses it: exit status 1
  interrupted,    // a stop signal ended the work before it was done: exit status 1
};

std::string_view code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status invalid(std::string m) { return {Code::invalid_argument, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::not_found, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::corruption, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::io_error, std::move(m)}; }
  static Status unavailable(std::string m) { return {Code::unavailable, std::move(m)}; }
  static Status timeout(std::string m) { return {Code::timeout, std::move(m)}; }
  static Status permission_denied(std::string m) { return {Code::permission_denied, std::move(m)}; }
  static Status limit_reached(std::string m) { return {Code::limit_reached, std::move(m)}; }
  static Status interrupted(std::string m) { return {Code::interrupted, std::move(m)}; }
  // "<what>: <strerror(err)>", with ENOSPC/EDQUOT mapped to disk_full.
  static Status from_errno(std::string_view what, int err);

  bool is_ok() const { return code_ == Code::ok; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // Prefixes the message with context: "segment 0001: short read" etc.
  Status with_context(std::string_view ctx) const;
  std::string to_string() const;

 private:
  Code code_ = Code::ok;
  std::string message_;
};

// A value or a non-OK Status, shaped like std::expected.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Status s) : v_(std::in_place_index<1>, std::move(s)) { assert(!std::get<1>(v_).is_ok()); }

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; OK when a value is held.
  Status status() const { return has_value() ? Status::ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

#define MQ_RETURN_IF_ERROR(expr)          \
  do {                                    \
    ::mq::Status mq_status_ = (expr);     \
    if (!mq_status_.is_ok()) return mq_status_; \
  } while (0)

}  // namespace mq

template <>
struct fmt::formatter<mq::Status> : fmt::formatter<std::string> {
  template <class Ctx>
  auto format(const mq::Status& s, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(s.to_string(), ctx);
  }
};
