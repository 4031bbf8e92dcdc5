# ladon_add_suite_tests(<target> SUFFIX <suffix> SOURCES <files...>
#                       [LABELS <labels...>] [ENVIRONMENT <vars...>] [EXCLUDE <gtest patterns...>])
#
# One CTest test per GoogleTest suite of <target> (TEST(Suite, ...) and
# TEST_F(Suite, ...) found in SOURCES at configure time), named
# "Suite.*<suffix>", that runs the suite's tests in one process. The emulator
# suites take this form instead of gtest_discover_tests' process per test:
# most of an emulated test is process start-up, and the race-checking build
# would otherwise add ~100 more processes to CI (issue 18). A failure names
# the test in the suite's output (ctest --output-on-failure).
function(ladon_add_suite_tests target)
  cmake_parse_arguments(PARSE_ARGV 1 SUITE "" "SUFFIX" "SOURCES;LABELS;ENVIRONMENT;EXCLUDE")
  set(suites "")
  foreach(source IN LISTS SUITE_SOURCES)
    file(READ ${source} text)
    string(REGEX MATCHALL "TEST(_F)?\\([ \t\r\n]*[A-Za-z_][A-Za-z0-9_]*[ \t\r\n]*," declarations "${text}")
    foreach(declaration IN LISTS declarations)
      string(REGEX REPLACE "TEST(_F)?\\([ \t\r\n]*([A-Za-z0-9_]+).*" "\\2" suite "${declaration}")
      list(APPEND suites ${suite})
    endforeach()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${source})
  endforeach()
  list(REMOVE_DUPLICATES suites)
  set(exclude "")
  if(SUITE_EXCLUDE)
    list(JOIN SUITE_EXCLUDE ":" exclude)
    set(exclude "-${exclude}")
  endif()
  foreach(suite IN LISTS suites)
    set(name "${suite}.*${SUITE_SUFFIX}")
    add_test(NAME ${name} COMMAND ${target} --gtest_filter=${suite}.*${exclude})
    set_tests_properties(${name} PROPERTIES LABELS "${SUITE_LABELS}")
    if(SUITE_ENVIRONMENT)
      set_tests_properties(${name} PROPERTIES ENVIRONMENT "${SUITE_ENVIRONMENT}")
    endif()
  endforeach()
endfunction()
