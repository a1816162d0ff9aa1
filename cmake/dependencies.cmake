# The C and C++ libraries the core links, found in one place.
#
# Two ways to build:
# - from source on a machine with the system's development packages (default): every missing
#   package is named in ONE configure-time error, with its Debian and RPM names;
# - BLOCKTRUST_BUNDLE_DEPS=ON (scripts/wheels): everything is linked statically into the
#   extension: OpenSSL, libargon2 and libsodium from the system's static archives, libpq and
#   libpqxx from BLOCKTRUST_DEPS_PREFIX (built by scripts/wheel_deps: libpq without
#   Kerberos/LDAP, libpqxx position-independent). The extension then needs only what the
#   manylinux policy allows (glibc, libstdc++, libgcc).
#
# Defines: OpenSSL::SSL, OpenSSL::Crypto, nlohmann_json::nlohmann_json, Boost::headers,
# PkgConfig::PQXX, PkgConfig::PQ, PkgConfig::ARGON2, PkgConfig::HIREDIS, SODIUM_ARCHIVE,
# SODIUM_INCLUDE_DIRS.

option(BLOCKTRUST_BUNDLE_DEPS "Link every C/C++ dependency statically (wheels)" OFF)
set(BLOCKTRUST_DEPS_PREFIX "" CACHE PATH "libpq and libpqxx built by scripts/wheel_deps")

find_package(Threads REQUIRED)
if(BLOCKTRUST_BUNDLE_DEPS)
  set(OPENSSL_USE_STATIC_LIBS TRUE)
endif()

# The static archive lib<name>.a beside what pkg-config found for <prefix> (some .pc files name a
# wrong libdir, Debian's hiredis.pc among them: the located shared library's directory counts too).
macro(_blocktrust_archive var prefix name)
  set(_dirs ${${prefix}_LIBDIR} ${${prefix}_LIBRARY_DIRS})
  if(pkgcfg_lib_${prefix}_${name})
    get_filename_component(_found_dir "${pkgcfg_lib_${prefix}_${name}}" DIRECTORY)
    list(APPEND _dirs "${_found_dir}")
  endif()
  find_file(${var} lib${name}.a HINTS ${_dirs} NO_DEFAULT_PATH)
endmacro()

# "what it provides|Debian package|RPM package" for everything missing.
set(_missing "")
macro(_blocktrust_need found what deb rpm)
  if(NOT ${found})
    list(APPEND _missing "${what}|${deb}|${rpm}")
  endif()
endmacro()

find_package(OpenSSL 3 QUIET)
_blocktrust_need(OPENSSL_FOUND "OpenSSL 3" libssl-dev openssl-devel)
find_package(nlohmann_json 3 CONFIG QUIET)
_blocktrust_need(nlohmann_json_FOUND "nlohmann_json 3" nlohmann-json3-dev json-devel)
find_package(Boost 1.81 CONFIG QUIET)
_blocktrust_need(Boost_FOUND "Boost >= 1.81 (Asio, Beast)" libboost1.81-dev boost-devel)
if(BLOCKTRUST_BUILD_PYTHON)
  find_package(Python 3.10 QUIET COMPONENTS Interpreter Development.Module)
  _blocktrust_need(Python_FOUND "Python ${Python_VERSION} headers" python3-dev python3-devel)
endif()
find_package(PkgConfig QUIET)
_blocktrust_need(PKG_CONFIG_FOUND "pkg-config" pkg-config pkgconf-pkg-config)
if(PKG_CONFIG_FOUND)
  # libsodium's Argon2id (SIMD fill picked at run time) computes p = 1 / 16-byte-salt hashes;
  # Debian's libargon2 is the portable reference build and keeps everything else. libsodium's
  # archive is linked privately in both modes (see CMakeLists.txt).
  pkg_check_modules(SODIUM QUIET libsodium)
  if(SODIUM_FOUND)
    _blocktrust_archive(SODIUM_ARCHIVE SODIUM sodium)
  endif()
  _blocktrust_need(SODIUM_ARCHIVE "libsodium (static archive)" libsodium-dev libsodium-static)
  if(BLOCKTRUST_BUNDLE_DEPS)
    pkg_check_modules(ARGON2 QUIET libargon2)
    if(ARGON2_FOUND)
      _blocktrust_archive(ARGON2_ARCHIVE ARGON2 argon2)
    endif()
    _blocktrust_need(ARGON2_ARCHIVE "libargon2 (static archive)" libargon2-dev libargon2-devel)
    pkg_check_modules(HIREDIS QUIET hiredis)
    if(HIREDIS_FOUND)
      _blocktrust_archive(HIREDIS_ARCHIVE HIREDIS hiredis)
    endif()
    _blocktrust_need(HIREDIS_ARCHIVE "hiredis (static archive)" libhiredis-dev hiredis-devel)
  else()
    pkg_check_modules(PQXX QUIET IMPORTED_TARGET libpqxx)
    _blocktrust_need(PQXX_FOUND "libpqxx" libpqxx-dev libpqxx-devel)
    # The pool drives libpq directly under libpqxx (typed parameters, transaction status, cancel).
    pkg_check_modules(PQ QUIET IMPORTED_TARGET libpq)
    _blocktrust_need(PQ_FOUND "libpq" libpq-dev libpq-devel)
    pkg_check_modules(ARGON2 QUIET IMPORTED_TARGET libargon2)
    _blocktrust_need(ARGON2_FOUND "libargon2" libargon2-dev libargon2-devel)
    # The Redis client (cpp/src/redis.cpp) uses hiredis for RESP encoding and reply parsing only.
    pkg_check_modules(HIREDIS QUIET IMPORTED_TARGET hiredis)
    _blocktrust_need(HIREDIS_FOUND "hiredis" libhiredis-dev hiredis-devel)
  endif()
else()
  _blocktrust_need(PKG_CONFIG_FOUND
                   "libpqxx, libpq, libargon2, libsodium, hiredis (found through pkg-config)"
                   "libpqxx-dev libpq-dev libargon2-dev libsodium-dev libhiredis-dev"
                   "libpqxx-devel libpq-devel libargon2-devel libsodium-static hiredis-devel")
endif()

if(BLOCKTRUST_BUNDLE_DEPS)
  foreach(_lib libpq libpqxx)
    if(NOT EXISTS "${BLOCKTRUST_DEPS_PREFIX}/lib/${_lib}.a")
      list(APPEND _missing "${_lib}.a in BLOCKTRUST_DEPS_PREFIX (run scripts/wheel_deps)|-|-")
    endif()
  endforeach()
endif()

if(_missing)
  set(_lines "")
  set(_debs "")
  set(_rpms "")
  foreach(_m IN LISTS _missing)
    string(REPLACE "|" ";" _f "${_m}")
    list(GET _f 0 _what)
    list(GET _f 1 _deb)
    list(GET _f 2 _rpm)
    string(APPEND _lines "\n  ${_what}: Debian/Ubuntu ${_deb}, Fedora/RHEL ${_rpm}")
    if(NOT _deb STREQUAL "-")
      list(APPEND _debs ${_deb})
      list(APPEND _rpms ${_rpm})
    endif()
  endforeach()
  string(REPLACE ";" " " _debs "${_debs}")
  string(REPLACE ";" " " _rpms "${_rpms}")
  message(FATAL_ERROR
    "blocktrust-native cannot be built from source here: these development packages are missing:"
    "${_lines}\n"
    "Install them (apt-get install ${_debs} | dnf install ${_rpms}) and build again, or install a "
    "prebuilt wheel (pip install --only-binary blocktrust-native blocktrust-native).")
endif()

if(BLOCKTRUST_BUNDLE_DEPS)
  set(_prefix "${BLOCKTRUST_DEPS_PREFIX}")
  add_library(PkgConfig::PQ STATIC IMPORTED)
  set_target_properties(PkgConfig::PQ PROPERTIES
    IMPORTED_LOCATION "${_prefix}/lib/libpq.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_prefix}/include"
    INTERFACE_LINK_LIBRARIES "OpenSSL::SSL;OpenSSL::Crypto;Threads::Threads")
  add_library(PkgConfig::PQXX STATIC IMPORTED)
  set_target_properties(PkgConfig::PQXX PROPERTIES
    IMPORTED_LOCATION "${_prefix}/lib/libpqxx.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_prefix}/include"
    INTERFACE_LINK_LIBRARIES PkgConfig::PQ)
  add_library(PkgConfig::ARGON2 STATIC IMPORTED)
  set_target_properties(PkgConfig::ARGON2 PROPERTIES
    IMPORTED_LOCATION "${ARGON2_ARCHIVE}"
    INTERFACE_INCLUDE_DIRECTORIES "${ARGON2_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(PkgConfig::HIREDIS STATIC IMPORTED)
  set_target_properties(PkgConfig::HIREDIS PROPERTIES
    IMPORTED_LOCATION "${HIREDIS_ARCHIVE}"
    INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIRS}"
    INTERFACE_COMPILE_OPTIONS "${HIREDIS_CFLAGS_OTHER}")
endif()
