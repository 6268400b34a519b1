#!/usr/bin/env bash
# Fails when a file generated from capi/kvc.h for the Go and Rust bindings
# is not what scripts/gen_binding_enums.py writes today: someone changed
# kvc.h (a new KVC_ERR_* code, a field, a function) without regenerating, or
# edited a generated file by hand. Regenerates into a temporary folder and
# diffs against the committed files.
#   scripts/check_drift.sh              check
#   scripts/check_drift.sh --fix        regenerate in place instead
#   scripts/check_drift.sh --self-test  check that the check fails on a copy
#                                       of kvc.h with one more KVC_ERR_* code
# KVC_HEADER names another header to check against (default capi/kvc.h).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
gen="$root/scripts/gen_binding_enums.py"
py="${PYTHON:-python3}"
header="${KVC_HEADER:-$root/capi/kvc.h}"

case "${1:-}" in
  --fix)
    exec "$py" "$gen" --root "$root" --header "$header" ;;
  --self-test)
    t="$(mktemp -d)"
    trap 'rm -rf "$t"' EXIT
    # One more status code after the last one, as a future kvc.h would add.
    "$py" - "$header" "$t/kvc.h" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
m = re.search(r"(KVC_ERR_\w+) = (-\d+)(\s*/\*[^*]*\*/)?\s*\n\}\s*kvc_status;", src)
if not m:
    sys.exit("self-test: the last kvc_status member was not found")
new = "%s = %s,%s\n  KVC_ERR_DRIFT_SELF_TEST = %d\n} kvc_status;" % (
    m.group(1), m.group(2), m.group(3) or "", int(m.group(2)) - 1)
open(sys.argv[2], "w").write(src[:m.start()] + new + src[m.end():])
PY
    if KVC_HEADER="$t/kvc.h" "$0" >"$t/out" 2>&1; then
      echo "drift self-test: a new KVC_ERR_* code in kvc.h went unnoticed" >&2
      exit 1
    fi
    grep -q "KVC_ERR_DRIFT_SELF_TEST" "$t/out" || { cat "$t/out" >&2; exit 1; }
    echo "drift self-test: a new KVC_ERR_* code makes the check fail, as it should"
    exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--fix | --self-test]" >&2; exit 2 ;;
esac

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" "$gen" --root "$tmp" --header "$header"
status=0
while IFS= read -r rel; do
  if [[ ! -f "$root/$rel" ]]; then
    echo "drift: $rel is missing (it is generated from capi/kvc.h)" >&2
    status=1
  elif ! diff -u --label "$rel (committed)" --label "$rel (from ${header#$root/})" \
      "$root/$rel" "$tmp/$rel" >"$tmp/diff" 2>&1; then
    echo "drift: $rel differs from what ${header#$root/} generates:" >&2
    cat "$tmp/diff" >&2
    status=1
  fi
done < <("$py" "$gen" --list)
if ((status)); then
  cat >&2 <<MSG

drift: the Go/Rust bindings' generated files are out of date with capi/kvc.h.
Regenerate them and commit the result:
    python3 scripts/gen_binding_enums.py      (or scripts/check_drift.sh --fix)
then adapt the hand-written code if kvc.h gained something it should expose.
MSG
  exit 1
fi
echo "drift: $("$py" "$gen" --list | wc -l) generated files match capi/kvc.h"
