#include "util/status.h"

namespace kvc {

const char* CodeText(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kPending: return "pending: another writer holds the reservation";
    case Code::kExists: return "already exists";
    case Code::kNoSpace: return "no space";
    case Code::kTimeout: return "timed out";
    case Code::kClosed: return "handle is closed";
    case Code::kLayout: return "layout mismatch";
    case Code::kNoMemory: return "out of memory";
    case Code::kInternal: return "internal error";
    case Code::kUnsupported: return "unsupported";
    case Code::kIo: return "I/O error";
    case Code::kParse: return "parse error";
    case Code::kPermission: return "permission denied";
    case Code::kQuota: return "quota exceeded";
    case Code::kUnavailable: return "unavailable";
    case Code::kCorrupt: return "corrupt data";
    case Code::kFenced: return "write fenced";
  }
  return "unknown status";
}

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "KVC_OK";
    case Code::kInvalidArgument: return "KVC_ERR_INVALID_ARGUMENT";
    case Code::kNotFound: return "KVC_ERR_NOT_FOUND";
    case Code::kPending: return "KVC_ERR_PENDING";
    case Code::kExists: return "KVC_ERR_EXISTS";
    case Code::kNoSpace: return "KVC_ERR_NO_SPACE";
    case Code::kTimeout: return "KVC_ERR_TIMEOUT";
    case Code::kClosed: return "KVC_ERR_CLOSED";
    case Code::kLayout: return "KVC_ERR_LAYOUT";
    case Code::kNoMemory: return "KVC_ERR_NO_MEMORY";
    case Code::kInternal: return "KVC_ERR_INTERNAL";
    case Code::kUnsupported: return "KVC_ERR_UNSUPPORTED";
    case Code::kIo: return "KVC_ERR_IO";
    case Code::kParse: return "KVC_ERR_PARSE";
    case Code::kPermission: return "KVC_ERR_PERMISSION";
    case Code::kQuota: return "KVC_ERR_QUOTA";
    case Code::kUnavailable: return "KVC_ERR_UNAVAILABLE";
    case Code::kCorrupt: return "KVC_ERR_CORRUPT";
    case Code::kFenced: return "KVC_ERR_FENCED";
  }
  return "KVC_ERR_UNKNOWN";
}

std::string Status::ToString() const {
  std::string s = CodeName(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace kvc
