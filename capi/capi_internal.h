// Helpers shared by the C shim's translation units (capi/*.cc). Not installed.
//
// Every exported function body runs inside Guard(), which maps a Status to
// its code, records the message in the caller's kvc_error (if any) and in the
// thread's last-error slot, and turns any C++ exception into a status.
#ifndef KVC_CAPI_CAPI_INTERNAL_H_
#define KVC_CAPI_CAPI_INTERNAL_H_

#include <exception>
#include <new>
#include <string>

#include "kvc.h"
#include "util/status.h"

#define KVC_EXPORT extern "C" __attribute__((visibility("default")))

namespace kvc::capi {

// Records `s` (OK included: it clears the message) and returns its code.
int Record(kvc_error* err, const Status& s);

// Runs `body` (returning Status) with exceptions mapped to statuses.
template <class F>
int Guard(kvc_error* err, F&& body) noexcept {
  try {
    return Record(err, body());
  } catch (const std::bad_alloc&) {
    return Record(err, Status(Code::kNoMemory, "out of memory"));
  } catch (const std::exception& e) {
    return Record(err, Status(Code::kInternal, std::string("unexpected exception: ") + e.what()));
  } catch (...) {
    return Record(err, Status(Code::kInternal, "unexpected exception"));
  }
}

// A NULL check with a message naming the parameter.
#define KVC_REQUIRE_ARG(ptr, name)                                                     \
  do {                                                                                 \
    if ((ptr) == nullptr) return ::kvc::InvalidArgument(std::string(name) + " is NULL"); \
  } while (0)

}  // namespace kvc::capi

#endif  // KVC_CAPI_CAPI_INTERNAL_H_
