# Python tests registered by discovery: tests/harness/list_tests.py lists a
# script's test cases (Class.test_name, parsed, not run) at configure time, one
# ctest entry a case; a change to the script re-runs cmake (CMAKE_CONFIGURE_DEPENDS).
#
# kache_py_tests(<script under tests/>
#     NAME <template>          ctest name; {class}, {test} and {case} (the test
#                              name without test_) are replaced
#     [CLASS <class>...]       only these classes' cases
#     [ARGS <arg>...]          before the case on the command line
#     [RENAME <test>=<name>...] a case whose ctest name is not the template's
#     [TIMEOUT <s>] [LABELS <l>...] [ENVIRONMENT <VAR=value>...]
#     [WHOLE_FILE])            one entry, NAME, that runs every case of the script
find_package(Python3 COMPONENTS Interpreter REQUIRED)
set(KACHE_PY_LISTER ${CMAKE_CURRENT_LIST_DIR}/list_tests.py)

function(kache_py_tests script)
  cmake_parse_arguments(PT "WHOLE_FILE" "NAME;TIMEOUT"
                        "CLASS;ARGS;RENAME;LABELS;ENVIRONMENT" ${ARGN})
  set(path ${CMAKE_CURRENT_SOURCE_DIR}/${script})
  if(PT_WHOLE_FILE)
    add_test(NAME ${PT_NAME} COMMAND ${Python3_EXECUTABLE} ${path} ${PT_ARGS})
    _kache_py_props(${PT_NAME})
    return()
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
  execute_process(COMMAND ${Python3_EXECUTABLE} ${KACHE_PY_LISTER} ${path}
                  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "listing the cases of ${script}: ${err}")
  endif()
  string(REPLACE "\n" ";" cases "${out}")
  foreach(c ${cases})
    string(REPLACE "." ";" parts "${c}")
    list(GET parts 0 cls)
    list(GET parts 1 test)
    if(PT_CLASS AND NOT cls IN_LIST PT_CLASS)
      continue()
    endif()
    string(REGEX REPLACE "^test_" "" case "${test}")
    string(REPLACE "{class}" "${cls}" name "${PT_NAME}")
    string(REPLACE "{test}" "${test}" name "${name}")
    string(REPLACE "{case}" "${case}" name "${name}")
    foreach(r ${PT_RENAME})
      if(r MATCHES "^${test}=(.+)$")
        set(name ${CMAKE_MATCH_1})
      endif()
    endforeach()
    add_test(NAME ${name} COMMAND ${Python3_EXECUTABLE} ${path} ${PT_ARGS} ${c})
    _kache_py_props(${name})
  endforeach()
endfunction()

# The TIMEOUT, LABELS and ENVIRONMENT of the caller's kache_py_tests on one test.
macro(_kache_py_props name)
  if(PT_TIMEOUT)
    set_tests_properties(${name} PROPERTIES TIMEOUT ${PT_TIMEOUT})
  endif()
  if(PT_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${PT_LABELS}")
  endif()
  if(PT_ENVIRONMENT)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${PT_ENVIRONMENT}")
  endif()
endmacro()
