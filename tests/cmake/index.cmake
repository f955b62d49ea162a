# Tests of index/ and of the commands over it (stats, gc, list, purge, verify).
kache_unit_test(test_index kache_index)
add_executable(index_fixture ${CMAKE_CURRENT_SOURCE_DIR}/tools/index_fixture.c)
target_link_libraries(index_fixture PRIVATE kache_store)
add_test(NAME cli_index
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_index_cli.py
                 $<TARGET_FILE:kached> $<TARGET_FILE:index_fixture>)
set_tests_properties(cli_index PROPERTIES TIMEOUT 120)
