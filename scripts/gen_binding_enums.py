#!/usr/bin/env python3
"""Generates the parts of the Go and Rust bindings that follow capi/kvc.h.

kvc.h is the single source of truth of the C ABI. What the bindings copy from
it is written by this script, committed, and checked for drift in CI
(scripts/check_drift.sh regenerates into a temporary folder and diffs):

  bindings/go/codes_gen.go              Go: status codes with their sentinel
                                        errors, tiers, features, miss reasons
  bindings/rust/kvc-sys/src/bindings.rs Rust: every type, constant and
                                        function of kvc.h as raw FFI
  bindings/rust/kvc-sys/tests/gen/layout_table.rs
                                        Rust: a C program that prints the
                                        compiler's sizes, offsets and constant
                                        values, and the Rust side of each
  bindings/rust/kvc/src/codes.rs        Rust: the safe crate's Code, Tier,
                                        MissReason and Features

The parser reads the subset of C that kvc.h is written in (object-like
#defines, typedef'd enums and structs, opaque struct typedefs, KVC_API
function prototypes). Anything else is an error, so a new construct in kvc.h
fails here loudly instead of being skipped.

usage: gen_binding_enums.py [--root DIR] [--header FILE] [--list]
  --root DIR    write the files under DIR instead of the repository root
  --header FILE parse FILE instead of capi/kvc.h
  --list        print the generated paths (relative to the root) and exit
"""

import argparse
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GO_CODES = "bindings/go/codes_gen.go"
RUST_SYS = "bindings/rust/kvc-sys/src/bindings.rs"
RUST_LAYOUT = "bindings/rust/kvc-sys/tests/gen/layout_table.rs"
RUST_CODES = "bindings/rust/kvc/src/codes.rs"
OUTPUTS = [GO_CODES, RUST_SYS, RUST_LAYOUT, RUST_CODES]

BANNER = "scripts/gen_binding_enums.py from capi/kvc.h"

# Macros that are not constants of the ABI.
IGNORED_DEFINES = {"KVC_H", "KVC_API"}

C_TO_RUST = {
    "void": "c_void",
    "char": "c_char",
    "int": "c_int",
    "unsigned": "c_uint",
    "uint8_t": "u8",
    "uint16_t": "u16",
    "uint32_t": "u32",
    "uint64_t": "u64",
    "int8_t": "i8",
    "int16_t": "i16",
    "int32_t": "i32",
    "int64_t": "i64",
    "size_t": "usize",
    "double": "f64",
    "float": "f32",
}

# Words spelled as Go initialisms (https://go.dev/wiki/CodeReviewComments).
GO_INITIALISMS = {"IO", "GPU", "SSD", "CUDA", "GRPC", "SHA256", "XXH3", "TTL", "ID", "OK"}

# The enums the safe bindings expose, and how each language names them.
# skip: members a language leaves out; count: a member that is a count.
SAFE_ENUMS = [
    dict(c="kvc_status", strip="KVC_ERR_", go_type="Code", go_prefix="Code",
         rust_type="Code", rust_skip={"KVC_OK"}),
    dict(c="kvc_tier", strip="KVC_TIER_", go_type="Tier", go_prefix="Tier", go_string=True,
         rust_type="Tier", rust_skip={"KVC_TIER_NONE"}),
    dict(c="kvc_miss_reason", strip="KVC_MISS_", go_type="MissReason", go_prefix="Miss",
         go_string=True, rust_type="MissReason", count="KVC_MISS_REASONS"),
    dict(c="kvc_feature", strip="KVC_FEATURE_", go_type="Feature", go_prefix="Feature",
         rust_type="Features", flags=True),
    dict(c="kvc_write_mode", strip="KVC_WRITE_", go_type="WriteMode", go_prefix="Write",
         go_string=True, rust_type="WriteMode"),
]


class ParseError(Exception):
    pass


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

class Header:
    def __init__(self):
        self.defines = []    # (name, value, doc)
        self.inits = {}      # struct name -> macro name, for *_INIT macros
        self.enums = []      # dict(name, members=[(name, value, comment)], doc)
        self.structs = []    # dict(name, fields=[(name, ctype, dims)], doc)
        self.opaques = []    # (name, doc)
        self.functions = []  # dict(name, ret, params=[(name, ctype)], doc)
        self.consts = {}     # every integer constant: name -> value


def strip_comments(text):
    """Replaces comments by spaces (newlines kept) so offsets stay valid."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r"/\*.*?\*/|//[^\n]*", blank, text, flags=re.S)


def comment_text(raw):
    """The text of one /* ... */ comment, as lines."""
    body = raw[2:-2]
    lines = body.split("\n")
    out = []
    for ln in lines:
        ln = ln.rstrip()
        ln = re.sub(r"^\s*\* ?", "", ln) if re.match(r"^\s*\*", ln) else ln.strip()
        out.append(ln)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    # Drop the common leading indentation left by "/* text" first lines.
    return [ln.rstrip() for ln in out]


def doc_before(raw, pos):
    """The comment that ends on the line just above `pos` (no blank line)."""
    before = raw[:pos]
    m = re.search(r"(/\*(?:(?!\*/).)*?\*/)[ \t]*\n[ \t]*$", before, flags=re.S)
    if not m:
        return []
    text = comment_text(m.group(1))
    if all(set(t.strip()) <= set("-") for t in text):
        return []
    return text


# Object-like #defines not evaluated yet: name -> value text. A name used
# before its #define's value is needed is evaluated on first use.
_LAZY = {}


def evaluate(expr, consts, where):
    e = expr.strip()
    e = re.sub(r"\b(0x[0-9A-Fa-f]+|\d+)[uUlL]*\b", r"\1", e)
    def sub(m):
        name = m.group(0)
        if name.startswith("0x"):
            return name
        if name not in consts and name in _LAZY:
            consts[name] = evaluate(_LAZY.pop(name), consts, "%s (%s)" % (where, name))
        if name not in consts:
            raise ParseError("%s: unknown name %s in '%s'" % (where, name, expr))
        return "(%d)" % consts[name]
    e = re.sub(r"\b[A-Za-z_]\w*\b", sub, e)
    if not re.fullmatch(r"[\d\sxA-Fa-f()+\-*<>|]*", e):
        raise ParseError("%s: cannot evaluate '%s'" % (where, expr))
    try:
        return int(eval(e, {"__builtins__": {}}, {}))  # only digits and operators remain
    except Exception as ex:  # noqa: BLE001
        raise ParseError("%s: cannot evaluate '%s': %s" % (where, expr, ex))


def parse(path):
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    h = Header()
    raw = raw.replace("\\\n", "  ")  # continuation lines, same length
    code = strip_comments(raw)

    # Preprocessor lines: #defines are recorded, C++ guards dropped, the rest
    # blanked so that only declarations remain.
    lines = code.split("\n")
    raw_lines = raw.split("\n")
    offsets = []
    o = 0
    for ln in lines:
        offsets.append(o)
        o += len(ln) + 1
    skip_cpp = 0
    pending_defines = []
    for i, ln in enumerate(lines):
        s = ln.strip()
        if skip_cpp:
            if s.startswith("#endif"):
                skip_cpp = 0
            lines[i] = " " * len(ln)
            continue
        if s.startswith("#ifdef __cplusplus"):
            skip_cpp = 1
            lines[i] = " " * len(ln)
            continue
        if not s.startswith("#"):
            continue
        m = re.match(r"#\s*define\s+(\w+)(\([^)]*\))?\s*(.*)$", s)
        if m:
            name, args, value = m.group(1), m.group(2), m.group(3).strip()
            if name in IGNORED_DEFINES:
                pass
            elif args:
                if not name.endswith("_BUF"):
                    raise ParseError("line %d: function-like macro %s is not understood" % (i + 1, name))
            else:
                pending_defines.append((name, value, i))
                if not name.endswith("_INIT"):
                    _LAZY[name] = value
        elif not re.match(r"#\s*(ifndef|ifdef|if|else|elif|endif|include)\b", s):
            raise ParseError("line %d: preprocessor line not understood: %s" % (i + 1, s))
        lines[i] = " " * len(ln)
    code = "\n".join(lines)

    # Declarations, split at ';' outside braces.
    decls = []
    depth = 0
    start = 0
    for j, ch in enumerate(code):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            decls.append((start, code[start:j]))
            start = j + 1
    if code[start:].strip():
        raise ParseError("text after the last declaration: %r" % code[start:].strip()[:60])

    typedef_names = set()
    for begin, text in decls:
        lead = len(text) - len(text.lstrip())
        pos = begin + lead
        d = " ".join(text.split())
        doc = doc_before(raw, pos)
        line = raw.count("\n", 0, pos) + 1
        m = re.fullmatch(r"typedef enum (\w+) \{(.*)\} (\w+)", d)
        if m:
            if m.group(1) != m.group(3):
                raise ParseError("line %d: enum tag %s differs from its typedef" % (line, m.group(1)))
            body_start = raw.index("{", pos)
            body_end = raw.index("}", body_start)
            members = parse_enum_body(raw[body_start + 1:body_end], h.consts, line)
            h.enums.append(dict(name=m.group(1), members=members, doc=doc))
            typedef_names.add(m.group(1))
            continue
        m = re.fullmatch(r"typedef struct (\w+) \{(.*)\} (\w+)", d)
        if m:
            if m.group(1) != m.group(3):
                raise ParseError("line %d: struct tag %s differs from its typedef" % (line, m.group(1)))
            fields = parse_struct_body(m.group(2), h.consts, line, typedef_names)
            h.structs.append(dict(name=m.group(1), fields=fields, doc=doc))
            typedef_names.add(m.group(1))
            continue
        m = re.fullmatch(r"typedef struct (\w+) (\w+)", d)
        if m:
            if m.group(1) != m.group(2):
                raise ParseError("line %d: struct tag %s differs from its typedef" % (line, m.group(1)))
            h.opaques.append((m.group(1), doc))
            typedef_names.add(m.group(1))
            continue
        m = re.fullmatch(r"KVC_API (.+?)\b(kvc_\w+) ?\((.*)\)", d)
        if m:
            ret = normalize_type(m.group(1), line, typedef_names)
            params = parse_params(m.group(3), line, typedef_names, h.consts)
            h.functions.append(dict(name=m.group(2), ret=ret, params=params, doc=doc))
            continue
        raise ParseError("line %d: declaration not understood: %s" % (line, d[:80]))

    # Defines, now that enum constants are known.
    for name, value, i in pending_defines:
        doc = doc_before(raw, offsets[i])
        if name.endswith("_INIT"):
            h.inits[name] = value
            continue
        if name not in h.consts:
            h.consts[name] = evaluate(_LAZY.pop(name), h.consts, "line %d (%s)" % (i + 1, name))
        h.defines.append((name, value, doc))
    check_inits(h)
    return h


def parse_enum_body(body, consts, line):
    """Members as (name, value, trailing comment), one or more per line."""
    members = []
    nxt = 0
    for ln in body.split("\n"):
        m = re.search(r"/\*(.*?)\*/", ln)
        comment = " ".join(m.group(1).split()) if m else ""
        code = strip_comments(ln).strip()
        if re.search(r"/\*|\*/", code):
            raise ParseError("line %d: multi-line comment inside an enum" % line)
        for item in [x.strip() for x in code.split(",") if x.strip()]:
            mm = re.fullmatch(r"(\w+)\s*(?:=\s*(.+))?", item)
            if not mm:
                raise ParseError("line %d: enum member not understood: %s" % (line, item))
            name, value = mm.group(1), mm.group(2)
            v = evaluate(value, consts, "line %d (%s)" % (line, name)) if value else nxt
            consts[name] = v
            nxt = v + 1
            members.append((name, v, comment))
    if not members:
        raise ParseError("line %d: empty enum" % line)
    return members


def split_decl(decl, line, typedef_names, consts):
    """'const kvc_key *parent' -> ('parent', ctype, dims)."""
    d = " ".join(decl.replace("*", " * ").split())
    m = re.fullmatch(r"(.*?)\b(\w+)((?: ?\[[^\]]*\])*)", d)
    if not m:
        raise ParseError("line %d: declarator not understood: %s" % (line, decl))
    type_part, name, dims_text = m.group(1).strip(), m.group(2), m.group(3)
    dims = [evaluate(x, consts, "line %d" % line) for x in re.findall(r"\[([^\]]*)\]", dims_text)]
    return name, normalize_type(type_part, line, typedef_names), dims


def normalize_type(t, line, typedef_names):
    """A C type as (base, base_const, [ptr_const, ...]) from outermost base out."""
    toks = t.replace("*", " * ").split()
    base_const = False
    base = []
    ptrs = []
    for tok in toks:
        if tok == "*":
            ptrs.append(False)
        elif tok == "const":
            if ptrs:
                ptrs[-1] = True
            else:
                base_const = True
        elif tok in ("struct", "enum"):
            raise ParseError("line %d: use the typedef name, not '%s'" % (line, t))
        else:
            if ptrs:
                raise ParseError("line %d: type not understood: %s" % (line, t))
            base.append(tok)
    name = " ".join(base)
    if name not in C_TO_RUST and name not in typedef_names:
        raise ParseError("line %d: unknown type '%s'" % (line, name))
    return (name, base_const, tuple(ptrs))


def parse_struct_body(body, consts, line, typedef_names):
    fields = []
    for decl in body.split(";"):
        if not decl.strip():
            continue
        if "," in decl or "(" in decl:
            raise ParseError("line %d: field not understood: %s" % (line, decl.strip()))
        fields.append(split_decl(decl, line, typedef_names, consts))
    return fields


def parse_params(text, line, typedef_names, consts):
    text = text.strip()
    if text == "void":
        return []
    out = []
    for p in text.split(","):
        if "(" in p:
            raise ParseError("line %d: function pointer parameters are not understood" % line)
        name, ctype, dims = split_decl(p, line, typedef_names, consts)
        if dims:  # an array parameter is a pointer
            base, bconst, ptrs = ctype
            ctype = (base, bconst, ptrs + (False,))
        out.append((name, ctype))
    return out


def check_inits(h):
    """_INIT macros must be struct_size = sizeof and zeros: defaults live in the library."""
    names = {s["name"] for s in h.structs}
    for macro, value in h.inits.items():
        struct = macro[:-len("_INIT")].lower()
        if struct not in names:
            raise ParseError("%s does not name a struct of kvc.h" % macro)
        m = re.fullmatch(r"\{\s*\(uint32_t\)\s*sizeof\((\w+)\)\s*,(.*)\}", " ".join(value.split()))
        if not m or m.group(1) != struct:
            raise ParseError("%s is not '{ (uint32_t)sizeof(%s), 0, ... }'" % (macro, struct))
        rest = re.sub(r"[{}\s,]", " ", m.group(2)).split()
        if any(x not in ("0", "NULL") for x in rest):
            raise ParseError("%s sets a non-zero field: defaults belong in the library" % macro)


# --------------------------------------------------------------------------
# Naming
# --------------------------------------------------------------------------

def go_words(name):
    out = []
    for w in name.split("_"):
        out.append(w if w in GO_INITIALISMS else w.capitalize())
    return "".join(out)


def rust_words(name):
    return "".join(w.capitalize() for w in name.split("_"))


def enum_by_name(h, name):
    for e in h.enums:
        if e["name"] == name:
            return e
    raise ParseError("kvc.h has no enum %s" % name)


def rust_type(ctype):
    base, bconst, ptrs = ctype
    t = C_TO_RUST.get(base, base)
    if not ptrs:
        return t
    # innermost pointer's pointee constness is bconst; then each pointer level
    # carries its own const for the level above it.
    consts = [bconst] + list(ptrs[:-1])
    for c in consts:
        t = ("*const " if c else "*mut ") + t
    return t


# --------------------------------------------------------------------------
# Go
# --------------------------------------------------------------------------

def gen_go(h):
    out = []
    w = out.append
    w("// Code generated by %s; DO NOT EDIT." % BANNER)
    w("")
    w("package kvc")
    w("")
    w('// #include "kvc.h"')
    w('import "C"')
    w("")
    w('import "strconv"')
    w("")
    for spec in SAFE_ENUMS:
        e = enum_by_name(h, spec["c"])
        gt = spec["go_type"]
        w("// %s values (%s in kvc.h)." % (gt, spec["c"]))
        w("const (")
        for name, _, comment in e["members"]:
            if name == spec.get("count"):
                continue
            short = name[len(spec["strip"]):] if name.startswith(spec["strip"]) else name[len("KVC_"):]
            gname = spec["go_prefix"] + go_words(short)
            w("\t// %s is %s%s." % (gname, name, (": " + comment) if comment else ""))
            w("\t%s %s = C.%s" % (gname, gt, name))
        w(")")
        w("")
        if spec.get("go_string"):
            w("// String is the value's name in kvc.h, lower case, without its prefix.")
            w("func (v %s) String() string {" % gt)
            w("\tswitch v {")
            for name, _, _ in e["members"]:
                if name == spec.get("count"):
                    continue
                short = name[len(spec["strip"]):]
                w("\tcase %s%s:" % (spec["go_prefix"], go_words(short)))
                w('\t\treturn "%s"' % short.lower())
            w("\t}")
            w('\treturn "%s(" + strconv.Itoa(int(v)) + ")"' % gt)
            w("}")
            w("")
        if spec.get("count"):
            cname = go_words(spec["count"][len("KVC_"):])
            w("// %s is the number of %s values (%s)." % (cname, gt, spec["count"]))
            w("const %s = C.%s" % (cname, spec["count"]))
            w("")
    st = enum_by_name(h, "kvc_status")
    w("// Sentinel errors, one per status code, for errors.Is: an *Error matches")
    w("// the sentinel of its Code.")
    w("var (")
    for name, _, comment in st["members"]:
        if name == "KVC_OK":
            continue
        short = go_words(name[len("KVC_ERR_"):])
        w("\t// Err%s matches errors of Code%s%s." % (short, short, (": " + comment) if comment else ""))
        w("\tErr%s = &Error{Code: Code%s}" % (short, short))
    w(")")
    w("")
    w("// allCodes lists every status code of kvc.h but KVC_OK, in order.")
    w("var allCodes = []Code{")
    for name, _, _ in st["members"]:
        if name != "KVC_OK":
            w("\tCode%s," % go_words(name[len("KVC_ERR_"):]))
    w("}")
    w("")
    w("// allCodeNames holds the C name of each of allCodes.")
    w("var allCodeNames = []string{")
    for name, _, _ in st["members"]:
        if name != "KVC_OK":
            w('\t"%s",' % name)
    w("}")
    w("")
    w("// sentinelOf returns the sentinel error of a code, nil for CodeOK and")
    w("// codes this package does not know.")
    w("func sentinelOf(c Code) *Error {")
    w("\tswitch c {")
    for name, _, _ in st["members"]:
        if name != "KVC_OK":
            short = go_words(name[len("KVC_ERR_"):])
            w("\tcase Code%s:" % short)
            w("\t\treturn Err%s" % short)
    w("\t}")
    w("\treturn nil")
    w("}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Rust
# --------------------------------------------------------------------------

def rust_doc(lines, indent="", fenced=False):
    """Doc comment lines; fenced as text so that rustdoc runs nothing."""
    if not lines:
        return []
    out = []
    if fenced:
        out.append(indent + "/// ```text")
    for ln in lines:
        out.append((indent + "/// " + ln).rstrip())
    if fenced:
        out.append(indent + "/// ```")
    return out


def gen_rust_sys(h):
    out = []
    w = out.append
    w("// Generated by %s; do not edit." % BANNER)
    w("// Regenerate with `python3 scripts/gen_binding_enums.py`; CI fails on drift.")
    w("")
    w("use core::marker::{PhantomData, PhantomPinned};")
    w("use std::os::raw::{c_char, c_int, c_void};")
    w("")
    w("// ---- constants (#define) ----")
    w("")
    for name, value, doc in h.defines:
        v = h.consts[name]
        ty = "u32" if v >= 0 else "c_int"
        for e in h.enums:
            if value.strip() in [m[0] for m in e["members"]]:
                ty = e["name"]
        out.extend(rust_doc(doc, fenced=True))
        w("pub const %s: %s = %d;" % (name, ty, v))
    w("")
    w("// ---- enums: a C enum is an int; its values are constants ----")
    for e in h.enums:
        w("")
        out.extend(rust_doc(e["doc"], fenced=True))
        w("pub type %s = c_int;" % e["name"])
        for name, v, comment in e["members"]:
            if comment:
                w("/// %s" % comment)
            w("pub const %s: %s = %d;" % (name, e["name"], v))
    w("")
    w("// ---- opaque handles ----")
    for name, doc in h.opaques:
        w("")
        out.extend(rust_doc(doc, fenced=True))
        w("#[repr(C)]")
        w("pub struct %s {" % name)
        w("    _private: [u8; 0],")
        w("    _marker: PhantomData<(*mut u8, PhantomPinned)>,")
        w("}")
    w("")
    w("// ---- structs ----")
    for s in h.structs:
        w("")
        out.extend(rust_doc(s["doc"], fenced=True))
        w("#[repr(C)]")
        w("#[derive(Copy, Clone, Debug)]")
        w("pub struct %s {" % s["name"])
        for fname, ctype, dims in s["fields"]:
            t = rust_type(ctype)
            for d in reversed(dims):
                t = "[%s; %d]" % (t, d)
            w("    pub %s: %s," % (fname, t))
        w("}")
        init = (s["name"].upper() + "_INIT") in h.inits
        w("")
        if init:
            w("/// As `%s_INIT`: `struct_size` set, every other field zero." % s["name"].upper())
        else:
            w("/// Every field zero (or NULL).")
        w("impl Default for %s {" % s["name"])
        w("    fn default() -> Self {")
        if init:
            w("        // SAFETY: every field is an integer, an array of them or a raw pointer,")
            w("        // for which all-zero bytes are a valid value.")
            w("        let mut v: Self = unsafe { core::mem::zeroed() };")
            w("        v.struct_size = core::mem::size_of::<Self>() as u32;")
            w("        v")
        else:
            w("        // SAFETY: every field is an integer, an array of them or a raw pointer,")
            w("        // for which all-zero bytes are a valid value.")
            w("        unsafe { core::mem::zeroed() }")
        w("    }")
        w("}")
    w("")
    w("// ---- functions ----")
    w("")
    w("// Linked by build.rs (KVC_LIB_DIR, or pkg-config).")
    w('extern "C" {')
    first = True
    for f in h.functions:
        if not first:
            w("")
        first = False
        out.extend(rust_doc(f["doc"], indent="    ", fenced=True))
        params = ", ".join("%s: %s" % (rust_ident(n), rust_type(t)) for n, t in f["params"])
        ret = "" if f["ret"] == ("void", False, ()) else " -> " + rust_type(f["ret"])
        w("    pub fn %s(%s)%s;" % (f["name"], params, ret))
    w("}")
    return "\n".join(out) + "\n"


def rust_ident(name):
    return name + "_" if name in ("type", "ref", "mod", "fn", "in", "match", "self", "use", "where") else name


def gen_rust_layout(h):
    out = []
    w = out.append
    w("// Generated by %s; do not edit." % BANNER)
    w("//")
    w("// C_PROGRAM prints, as the C compiler sees kvc.h, each struct's size and")
    w("// alignment, each field's offset and each constant's value; RUST_LAYOUT")
    w("// lists the same facts as kvc-sys declares them.")
    w("")
    w("use kvc_sys::*;")
    w("use std::mem::{align_of, size_of, MaybeUninit};")
    w("")
    w("pub const C_PROGRAM: &str = r#\"#include <stddef.h>")
    w("#include <stdio.h>")
    w('#include "kvc.h"')
    w("#define ALIGN(t) _Alignof(t)")
    w("int main(void) {")
    for s in h.structs:
        n = s["name"]
        w('  printf("size %s %%zu\\n", sizeof(%s));' % (n, n))
        w('  printf("align %s %%zu\\n", ALIGN(%s));' % (n, n))
        for fname, _, _ in s["fields"]:
            w('  printf("offset %s.%s %%zu\\n", offsetof(%s, %s));' % (n, fname, n, fname))
    for name, _, _ in h.defines:
        w('  printf("const %s %%lld\\n", (long long)(%s));' % (name, name))
    for e in h.enums:
        for name, _, _ in e["members"]:
            w('  printf("const %s %%lld\\n", (long long)(%s));' % (name, name))
    w("  return 0;")
    w("}")
    w('"#;')
    w("")
    w("macro_rules! offset {")
    w("    ($t:ty, $f:ident) => {{")
    w("        let v = MaybeUninit::<$t>::uninit();")
    w("        let base = v.as_ptr();")
    w("        // SAFETY: addr_of! computes a field address without reading it.")
    w("        let field = unsafe { core::ptr::addr_of!((*base).$f) };")
    w("        field as usize - base as usize")
    w("    }};")
    w("}")
    w("")
    w("pub fn rust_layout() -> Vec<(String, i128)> {")
    w("    vec![")
    for s in h.structs:
        n = s["name"]
        w('        ("size %s".to_string(), size_of::<%s>() as i128),' % (n, n))
        w('        ("align %s".to_string(), align_of::<%s>() as i128),' % (n, n))
        for fname, _, _ in s["fields"]:
            w('        ("offset %s.%s".to_string(), offset!(%s, %s) as i128),' % (n, fname, n, fname))
    for name, _, _ in h.defines:
        w('        ("const %s".to_string(), %s as i128),' % (name, name))
    for e in h.enums:
        for name, _, _ in e["members"]:
            w('        ("const %s".to_string(), %s as i128),' % (name, name))
    w("    ]")
    w("}")
    return "\n".join(out) + "\n"


def gen_rust_codes(h):
    out = []
    w = out.append
    w("// Generated by %s; do not edit." % BANNER)
    w("// Regenerate with `python3 scripts/gen_binding_enums.py`; CI fails on drift.")
    w("")
    for spec in SAFE_ENUMS:
        e = enum_by_name(h, spec["c"])
        rt = spec["rust_type"]
        members = [m for m in e["members"]
                   if m[0] not in spec.get("rust_skip", set()) and m[0] != spec.get("count")]
        def vname(name):
            short = name[len(spec["strip"]):] if name.startswith(spec["strip"]) else name[len("KVC_"):]
            return rust_words(short)
        if spec.get("flags"):
            w("/// A set of `%s` bits, as `kvc_features()` returns them." % spec["c"])
            w("#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]")
            w("pub struct %s(pub u32);" % rt)
            w("")
            w("impl %s {" % rt)
            for name, v, comment in members:
                cname = name[len(spec["strip"]):]
                w("    /// `%s`%s" % (name, (": " + comment) if comment else "."))
                w("    pub const %s: %s = %s(kvc_sys::%s as u32);" % (cname, rt, rt, name))
            w("")
            w("    /// Whether every bit of `other` is set in `self`.")
            w("    pub fn contains(self, other: %s) -> bool {" % rt)
            w("        self.0 & other.0 == other.0")
            w("    }")
            w("")
            w("    /// The names of the bits set, as in kvc.h without the prefix.")
            w("    pub fn names(self) -> Vec<&'static str> {")
            w("        let mut v = Vec::new();")
            for name, _, _ in members:
                cname = name[len(spec["strip"]):]
                w("        if self.contains(Self::%s) {" % cname)
                w('            v.push("%s");' % cname.lower())
                w("        }")
            w("        v")
            w("    }")
            w("}")
            w("")
            continue
        w("/// `%s` values%s." % (spec["c"], ", but `KVC_OK` (success is `Ok`)" if spec["c"] == "kvc_status" else ""))
        w("///")
        w("/// `Unknown` holds a value this crate does not know (from a newer library).")
        w("#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]")
        w("pub enum %s {" % rt)
        for name, _, comment in members:
            w("    /// `%s`%s" % (name, (": " + comment) if comment else "."))
            w("    %s," % vname(name))
        w("    /// A value this crate does not know.")
        w("    Unknown(i32),")
        w("}")
        w("")
        w("impl %s {" % rt)
        w("    /// The %s of a C value." % rt)
        w("    pub fn from_raw(v: i32) -> %s {" % rt)
        w("        match v {")
        for name, _, _ in members:
            w("            x if x == kvc_sys::%s => %s::%s," % (name, rt, vname(name)))
        w("            other => %s::Unknown(other)," % rt)
        w("        }")
        w("    }")
        w("")
        w("    /// The C value.")
        w("    pub fn raw(self) -> i32 {")
        w("        match self {")
        for name, _, _ in members:
            w("            %s::%s => kvc_sys::%s," % (rt, vname(name), name))
        w("            %s::Unknown(v) => v," % rt)
        w("        }")
        w("    }")
        w("")
        w("    /// Every known value, in kvc.h's order.")
        w("    pub const ALL: &'static [%s] = &[" % rt)
        for name, _, _ in members:
            w("        %s::%s," % (rt, vname(name)))
        w("    ];")
        w("")
        w("    /// The C name (`%s`), or \"\" for `Unknown`." % members[0][0])
        w("    pub fn c_name(self) -> &'static str {")
        w("        match self {")
        for name, _, _ in members:
            w('            %s::%s => "%s",' % (rt, vname(name), name))
        w('            %s::Unknown(_) => "",' % rt)
        w("        }")
        w("    }")
        w("}")
        w("")
        if spec.get("count"):
            w("/// The number of `%s` values (`%s`)." % (spec["c"], spec["count"]))
            w("pub const MISS_REASONS: usize = kvc_sys::%s as usize;" % spec["count"])
            w("")
    return "\n".join(out).rstrip("\n") + "\n"


def generate(h):
    return {
        GO_CODES: gen_go(h),
        RUST_SYS: gen_rust_sys(h),
        RUST_LAYOUT: gen_rust_layout(h),
        RUST_CODES: gen_rust_codes(h),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=REPO)
    ap.add_argument("--header", default=os.path.join(REPO, "capi", "kvc.h"))
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        print("\n".join(OUTPUTS))
        return 0
    try:
        h = parse(a.header)
        files = generate(h)
    except ParseError as e:
        print("gen_binding_enums: %s: %s" % (a.header, e), file=sys.stderr)
        return 1
    for rel, text in files.items():
        path = os.path.join(a.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
