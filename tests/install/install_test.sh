#!/usr/bin/env bash
# Installs a kvc build into a temporary prefix and uses it as its consumers
# would: checks the installed files, libkvc.so's SONAME and that it exports
# only kvc_* symbols; builds the C and C++ examples against the installed
# package with find_package(kvc) and with pkg-config, and runs them; imports
# the installed Python package and runs the Python example.
#
# Environment (CTest sets it, see CMakeLists.txt): KVC_BUILD_DIR,
# KVC_SOURCE_DIR, KVC_WORK_DIR (emptied), KVC_INSTALL_LIBDIR (default lib),
# KVC_PYTHON and KVC_PYTHON_INSTALL_DIR (empty: no Python binding built),
# KVC_PKG_CONFIG (default pkg-config).
set -uo pipefail
: "${KVC_BUILD_DIR:?}" "${KVC_SOURCE_DIR:?}" "${KVC_WORK_DIR:?}"
libdir_rel=${KVC_INSTALL_LIBDIR:-lib}
pkg_config=${KVC_PKG_CONFIG:-pkg-config}
work=$KVC_WORK_DIR
prefix=$work/prefix
libdir=$prefix/$libdir_rel
failures=()

step() { printf '== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*"; failures+=("$*"); }
# Runs a command with its output in a log, shown when it fails.
run() {
  local log=$work/$1.log
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    return 1
  fi
}

rm -rf "$work"
mkdir -p "$work"

step "cmake --install into $prefix"
if ! run install cmake --install "$KVC_BUILD_DIR" --prefix "$prefix"; then
  echo "install test: cmake --install failed"
  exit 1
fi

step "installed files"
for f in include/kvc.h "$libdir_rel/libkvc.so" "$libdir_rel/cmake/kvc/kvcConfig.cmake" \
         "$libdir_rel/cmake/kvc/kvcConfigVersion.cmake" "$libdir_rel/cmake/kvc/kvcTargets.cmake" \
         "$libdir_rel/pkgconfig/kvc.pc"; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done

step "libkvc.so: SONAME and exported symbols"
soname=$(readelf -d "$libdir/libkvc.so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [[ ! $soname =~ ^libkvc\.so\.[0-9]+$ ]]; then
  fail "libkvc.so has SONAME '$soname', not libkvc.so.<N>"
elif [[ ! -e $libdir/$soname || ! -L $libdir/libkvc.so ]]; then
  fail "libkvc.so is not a link to a versioned $soname"
fi
symbols=$(nm -D --defined-only "$libdir/libkvc.so" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }')
others=$(grep -v '^kvc_' <<<"$symbols" || true)
[[ -z $others ]] && echo "SONAME $soname; $(grep -c '^kvc_' <<<"$symbols") symbols, all kvc_*" \
  || fail "libkvc.so exports symbols outside kvc_*: $(tr '\n' ' ' <<<"$others")"
# Every function kvc.h declares is defined: a declaration without a body
# links in C (until called) and would fail only in a user's program.
declared=$(tr '\n' ' ' <"$prefix/include/kvc.h" | grep -o 'KVC_API[^;(]*(' | grep -o 'kvc_[a-z0-9_]*($' | tr -d '(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(sort -u <<<"$symbols"))
[[ -z $missing ]] && echo "all $(wc -l <<<"$declared") functions of kvc.h are defined" \
  || fail "kvc.h declares functions libkvc.so does not define: $(tr '\n' ' ' <<<"$missing")"

step "pkg-config: kvc.pc names this prefix"
export PKG_CONFIG_PATH=$libdir/pkgconfig
pc_prefix=$($pkg_config --variable=prefix kvc)
pc=("$pkg_config")
if [[ $(realpath -m "$pc_prefix") != $(realpath -m "$prefix") ]]; then
  fail "kvc.pc says prefix=$pc_prefix, not the prefix it was installed into ($prefix): it is" \
       "configured with CMAKE_INSTALL_PREFIX at configure time; write prefix=\${pcfiledir}/<relative>" \
       "in cmake/kvc.pc.in (the builds below define the prefix to go on)"
  pc=("$pkg_config" "--define-variable=prefix=$prefix")
fi
echo "cflags: $("${pc[@]}" --cflags kvc)  libs: $("${pc[@]}" --libs kvc)"

for lang in c cpp; do
  src=$KVC_SOURCE_DIR/examples/$lang
  step "examples/$lang: find_package(kvc) with CMAKE_PREFIX_PATH"
  if run "$lang-cmake-configure" cmake -S "$src" -B "$work/$lang-cmake" -DCMAKE_PREFIX_PATH="$prefix" \
     && run "$lang-cmake-build" cmake --build "$work/$lang-cmake"; then
    LD_LIBRARY_PATH=$libdir "$work/$lang-cmake/serving_loop" || fail "examples/$lang (find_package) did not run"
  else
    fail "examples/$lang does not build with find_package(kvc)"
  fi
  step "examples/$lang: pkg-config (its Makefile)"
  mkdir -p "$work/$lang-pkg"
  if run "$lang-pkg-build" make -C "$src" OUT="$work/$lang-pkg" PKG_CONFIG="${pc[*]}"; then
    LD_LIBRARY_PATH=$libdir "$work/$lang-pkg/serving_loop" || fail "examples/$lang (pkg-config) did not run"
  else
    fail "examples/$lang does not build with pkg-config"
  fi
done

if [[ -x $prefix/bin/kvc ]]; then
  step "the installed kvc tool"
  LD_LIBRARY_PATH=$libdir "$prefix/bin/kvc" version || fail "the installed kvc does not run"
fi

if [[ -n ${KVC_PYTHON:-} && -n ${KVC_PYTHON_INSTALL_DIR:-} ]]; then
  pydir=$prefix/$KVC_PYTHON_INSTALL_DIR
  step "Python: the kvc package in $pydir"
  for f in __init__.py __init__.pyi py.typed capi.py _naming.py; do
    [[ -e $pydir/kvc/$f ]] || fail "not installed: $KVC_PYTHON_INSTALL_DIR/kvc/$f"
  done
  # No LD_LIBRARY_PATH: the extension finds libkvc through its RPATH.
  if env -u LD_LIBRARY_PATH PYTHONPATH="$pydir" PYTHONDONTWRITEBYTECODE=1 "$KVC_PYTHON" -c '
import sys, kvc
assert kvc.__file__.startswith(sys.argv[1]), kvc.__file__
print("kvc", kvc.version(), "from", kvc.__file__)' "$pydir"; then
    step "examples/python/serving_loop.py on the installed package"
    env -u LD_LIBRARY_PATH PYTHONPATH="$pydir" PYTHONDONTWRITEBYTECODE=1 \
      "$KVC_PYTHON" "$KVC_SOURCE_DIR/examples/python/serving_loop.py" || fail "examples/python did not run"
  else
    fail "the installed kvc Python package does not import"
  fi
else
  step "Python: skipped (no Python binding in this build)"
fi

if ((${#failures[@]})); then
  printf '\ninstall test: %d failure(s):\n' "${#failures[@]}"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
echo "install test: ok"
