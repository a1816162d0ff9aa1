// Wheels only (force-included when BLOCKTRUST_BUNDLE_DEPS is on): keeps the extension loadable
// with the libstdc++ of manylinux_2_34 systems (GCC 11: GLIBCXX_3.4.29). GCC 12 gave
// std::condition_variable::wait(unique_lock&) a new version, GLIBCXX_3.4.30, that differs only in
// letting a pthread_cancel unwind through the wait; we never cancel threads, so the GLIBCXX_3.4.11
// version (in every libstdc++ since GCC 4.3) serves. scripts/wheels asks auditwheel for
// manylinux_2_34, so a newer symbol creeping in fails the wheel build instead of narrowing it.
#pragma once

__asm__(
    ".symver _ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE,"
    "_ZNSt18condition_variable4waitERSt11unique_lockISt5mutexE@GLIBCXX_3.4.11");
