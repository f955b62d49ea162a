# Unit tests of common/ (cmocka).
function(kache_unit_test name)
  add_executable(${name} ${CMAKE_CURRENT_SOURCE_DIR}/unit/${name}.c)
  target_link_libraries(${name} PRIVATE ${ARGN} PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 60 LABELS "unit;sanitize")
endfunction()

kache_unit_test(test_common kache_common)
target_sources(test_common PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit/pages.c)
