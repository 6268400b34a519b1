#!/usr/bin/env python3
"""Writes kvc/__init__.pyi from kvc/__init__.pyi.in and capi/kvc.h.

The error classes, the Tier and Feature members and the keyword options of
Cache, Namespace, stores, Node and NodeServer come from the header, named as kvc/_naming.py
names them at run time, so the stub follows the header without hand edits.

usage: gen_stub.py KVC_H TEMPLATE OUTPUT
"""

import importlib.util
import pathlib
import re
import sys


def load_naming(here: pathlib.Path):
    spec = importlib.util.spec_from_file_location("kvc_naming", here / "kvc" / "_naming.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def enum_members(header: str, enum: str, prefix: str) -> list:
    """(name, value) of the members of a C enum whose values are integer
    literals or shifts of them."""
    m = re.search(r"typedef enum %s \{(.*?)\}" % enum, header, re.S)
    if not m:
        sys.exit(f"gen_stub: enum {enum} not found in kvc.h")
    out = []
    for name, expr in re.findall(r"\b(%s\w+)\s*=\s*([-0-9<\s]+)" % prefix, m.group(1)):
        out.append((name, eval(expr.strip(), {"__builtins__": {}})))
    return out


def struct_fields(header: str, struct: str) -> list:
    m = re.search(r"typedef struct %s \{(.*?)\}\s*%s;" % (struct, struct), header, re.S)
    if not m:
        sys.exit(f"gen_stub: struct {struct} not found in kvc.h")
    fields = []
    for decl in m.group(1).split(";"):
        decl = " ".join(decl.split())
        if not decl:
            continue
        fm = re.match(r"(.*?)(\w+)$", decl)
        ctype, name = fm.group(1).strip(), fm.group(2)
        fields.append((ctype, name))
    pointers = {n for t, n in fields if t.endswith("*")}
    out = []
    for ctype, name in fields:
        if name == "struct_size":
            continue
        if name.endswith("_len") and name[: -len("_len")] in pointers:
            continue  # set with its pointer field
        if ctype == "const char *":
            hint = "Optional[str]"
        elif ctype == "const kvc_cache_options *":
            hint = "Optional[dict[str, Any]]"
        elif ctype == "const kvc_key *":
            hint = "Optional[Key]"
        elif ctype.endswith("*"):
            hint = "Optional[Bytes]"
        else:
            hint = "Optional[int]"
        out.append(f"{name}: {hint} = ...")
    return out


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    header = strip_comments(pathlib.Path(sys.argv[1]).read_text())
    template = pathlib.Path(sys.argv[2]).read_text()
    naming = load_naming(pathlib.Path(__file__).resolve().parent)

    errors = []
    for symbol, _ in enum_members(header, "kvc_status", naming.PREFIX):
        bases = ", ".join(["Error"] + [f"builtins.{b.__name__}" for b in naming.also(symbol)])
        errors.append(f"class {naming.class_name(symbol)}({bases}): ...")

    def members(enum: str, prefix: str, indent: str) -> str:
        return "\n".join(f"{indent}{s[len(prefix):]} = {v}" for s, v in enum_members(header, enum, prefix))

    def options(struct: str, indent: str, leave_out=()) -> str:
        fields = [f for f in struct_fields(header, struct) if f.split(":")[0] not in leave_out]
        return "\n".join([indent + "*,"] + [indent + f + "," for f in fields])

    lines = []
    for line in template.splitlines():
        key = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if key == "# @GENERATED_ERRORS@":
            lines.extend(indent + e for e in errors)
        elif key == "# @GENERATED_TIERS@":
            lines.append(members("kvc_tier", "KVC_TIER_", indent))
        elif key == "# @GENERATED_FEATURES@":
            lines.append(members("kvc_feature", "KVC_FEATURE_", indent))
        elif key == "# @GENERATED_WRITE_MODES@":
            lines.append(members("kvc_write_mode", "KVC_WRITE_", indent))
        elif key == "# @GENERATED_NODE_NAMESPACE_OPTIONS@":
            lines.append(options("kvc_namespace_options", indent, naming.NODE_NAMESPACE_UNSET))
        elif key.startswith("# @GENERATED_") and key.endswith("_OPTIONS@"):
            which = key[len("# @GENERATED_"):-len("_OPTIONS@")].lower()
            lines.append(options(f"kvc_{which}_options", indent))
        else:
            lines.append(line)
    text = "\n".join(lines) + "\n"
    if "@GENERATED" in text:
        sys.exit("gen_stub: an unknown @GENERATED section is left in the template")
    out = pathlib.Path(sys.argv[3])
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


if __name__ == "__main__":
    main()
