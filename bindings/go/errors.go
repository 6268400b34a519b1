package kvc

// #include "bridge.h"
import "C"

import "fmt"

// Code is a kvc status code (kvc_status): 0 or a stable negative value.
type Code int32

// String is the code's C name, as "KVC_ERR_NOT_FOUND".
func (c Code) String() string { return C.GoString(C.kvc_status_name(C.int(c))) }

// Description is the code's short fixed description, as "not found".
func (c Code) Description() string { return C.GoString(C.kvc_status_str(C.int(c))) }

// Error is a failed kvc call: the status code and the call's one-line
// message. Sentinels (ErrNotFound, ...) match any *Error of their code under
// errors.Is.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Code.Description()
	}
	return fmt.Sprintf("kvc: %s (%s)", msg, e.Code)
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, kvc.ErrNotFound) holds for every miss.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

// check turns a status and the call's kvc_error into an error. The message
// comes from the call's own out-parameter, never from kvc_error_last(): a
// goroutine may run on another thread by the time it reads it.
func check(rc C.int, e *C.kvc_error) error {
	if rc == C.KVC_OK {
		return nil
	}
	return &Error{Code: Code(rc), Message: C.GoString(&e.message[0])}
}

// statusError is the error of one entry of a batch's status array.
func statusError(s C.int32_t) error {
	if s == C.KVC_OK {
		return nil
	}
	if e := sentinelOf(Code(s)); e != nil {
		return e
	}
	return &Error{Code: Code(s)}
}

func errorf(code Code, format string, args ...interface{}) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errCacheClosed     = &Error{Code: CodeClosed, Message: "the cache is closed"}
	errNamespaceClosed = &Error{Code: CodeClosed, Message: "the namespace is closed"}
)

// statusMin is KVC_STATUS_MIN, the lowest code of the kvc.h built against.
const statusMin = C.KVC_STATUS_MIN
