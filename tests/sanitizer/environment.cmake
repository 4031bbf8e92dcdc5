# Included by CTest in a build with LADON_SANITIZE (tests/CMakeLists.txt):
# every test runs with the leak suppressions beside this file and stack
# traces for UndefinedBehaviorSanitizer reports.
get_filename_component(here "${CMAKE_CURRENT_LIST_FILE}" DIRECTORY)
set(ENV{LSAN_OPTIONS} "suppressions=${here}/lsan.supp:print_suppressions=0")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1")
