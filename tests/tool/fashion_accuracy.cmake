# Runs `ladon train --config examples/fashion_mtl.toml --epochs 3` (the
# foundation issue's acceptance run) and requires >= 82 % test accuracy on
# both `left` and `right` after the last epoch.
execute_process(COMMAND ${LADON} train --config ${SOURCE_DIR}/examples/fashion_mtl.toml --epochs 3
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ladon train exited with ${rc}")
endif()
set(pattern "left loss [0-9.]+ accuracy ([0-9.]+)( top5 [0-9.]+)? +right loss [0-9.]+ accuracy ([0-9.]+)")
string(REGEX MATCHALL "test +${pattern}" lines "${out}")
list(GET lines -1 last)
string(REGEX MATCH "${pattern}" _ "${last}")
set(left ${CMAKE_MATCH_1})
set(right ${CMAKE_MATCH_3})
if(NOT left OR NOT right)
  message(FATAL_ERROR "no test accuracies found in the output")
endif()
if(left LESS 0.82 OR right LESS 0.82)
  message(FATAL_ERROR "test accuracy after 3 epochs: left ${left}, right ${right}; expected >= 0.82 on both")
endif()
message("fashion-mtl after 3 epochs: left ${left}, right ${right} (>= 0.82)")
