// Status and Result<T>: the error currency of libkvc.
//
// A Status is a code and a one-line message. Codes equal the C ABI's
// kvc_status values, so capi/ maps a Status to a C status with a cast.
// Thread-compatible: a Status is a value; share it only when const.
#ifndef KVC_UTIL_STATUS_H_
#define KVC_UTIL_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace kvc {

enum class Code : int32_t {
  kOk = 0,
  kInvalidArgument = -1,
  kNotFound = -2,
  kPending = -3,
  kExists = -4,
  kNoSpace = -5,
  kTimeout = -6,
  kClosed = -7,
  kLayout = -8,
  kNoMemory = -9,
  kInternal = -10,
  kUnsupported = -11,
  kIo = -12,
  kParse = -13,
  kPermission = -14,
  kQuota = -15,
  kUnavailable = -16,
  kCorrupt = -17,
  kFenced = -18,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "KVC_ERR_NOT_FOUND: <message>", for logs and exceptions in tools.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// The fixed short text of a code ("not found").
const char* CodeText(Code code);
// The symbolic name of a code ("KVC_ERR_NOT_FOUND").
const char* CodeName(Code code);

inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m = "not found") { return {Code::kNotFound, std::move(m)}; }
inline Status LayoutError(std::string m) { return {Code::kLayout, std::move(m)}; }
inline Status ParseError(std::string m) { return {Code::kParse, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIo, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

// A value or the Status that explains its absence.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

#define KVC_RETURN_IF_ERROR(expr)            \
  do {                                       \
    ::kvc::Status kvc_status_tmp_ = (expr);  \
    if (!kvc_status_tmp_.ok()) return kvc_status_tmp_; \
  } while (0)

}  // namespace kvc

#endif  // KVC_UTIL_STATUS_H_
