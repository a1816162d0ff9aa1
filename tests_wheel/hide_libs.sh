#!/usr/bin/env bash
# Runs a command with the system's libpq, libpqxx, OpenSSL, libargon2, libsodium and hiredis hidden:
# empty files and directories are bind-mounted over them. Only inside a private mount namespace:
#   unshare -m --propagation private bash tests_wheel/hide_libs.sh (--runtime|--dev) COMMAND...
# --runtime hides the shared libraries too (a machine with none of them: the wheel's test);
# --dev hides only what their -dev packages add: headers, pkg-config files, link-time .so and .a
# (a machine with the runtime but no dev packages: the sdist's test; cmake itself needs libssl).
# With BLOCKTRUST_SYSTEM_CA set, that PEM file also becomes the system CA bundle.
set -euo pipefail
[[ $(readlink /proc/self/ns/mnt) != $(readlink /proc/1/ns/mnt) ]] ||
  { echo "hide_libs: not in a private mount namespace (use unshare -m)" >&2; exit 2; }
mode=$1
shift

empty=$(mktemp -d)
touch "$empty/file"
mkdir "$empty/dir"
libdir=/usr/lib/x86_64-linux-gnu
names="libpq libpqxx libssl libcrypto libargon2 libsodium libhiredis"
paths=()
for n in $names; do
  paths+=("$libdir/$n.a" "$libdir/$n.so" "$libdir/$n-"*.so)
  [[ $mode == --runtime ]] && paths+=("$libdir/$n.so."*)
done
for pc in libpq libpqxx openssl libssl libcrypto libargon2 libsodium hiredis; do
  paths+=("$libdir/pkgconfig/$pc.pc" "/usr/share/pkgconfig/$pc.pc")
done
paths+=(/usr/include/postgresql /usr/include/pqxx /usr/include/openssl
  /usr/include/x86_64-linux-gnu/openssl /usr/include/argon2.h /usr/include/sodium.h
  /usr/include/sodium /usr/include/hiredis)
[[ $mode == --runtime ]] && paths+=("$libdir/ossl-modules" "$libdir/engines-3")

hidden=0
for p in "${paths[@]}"; do
  [[ -e $p && ! -L $p ]] || continue # a symlink's target is in the list itself
  if [[ -d $p ]]; then mount --bind "$empty/dir" "$p"; else mount --bind "$empty/file" "$p"; fi
  hidden=$((hidden + 1))
done
echo "hide_libs: $hidden system files and directories hidden ($mode)" >&2

if [[ -n ${BLOCKTRUST_SYSTEM_CA:-} ]]; then
  mount --bind "$BLOCKTRUST_SYSTEM_CA" /etc/ssl/certs/ca-certificates.crt
  unset BLOCKTRUST_SYSTEM_CA SSL_CERT_FILE SSL_CERT_DIR
fi
exec "$@"
