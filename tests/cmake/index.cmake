# Tests of index/ and of the commands over it (stats, gc, list, purge, verify).
kache_unit_test(test_index kache_index)
add_executable(index_fixture ${CMAKE_CURRENT_SOURCE_DIR}/tools/index_fixture.c)
target_link_libraries(index_fixture PRIVATE kache_store)
kache_py_tests(cli/test_index_cli.py WHOLE_FILE NAME cli_index TIMEOUT 120
    ARGS $<TARGET_FILE:kached> $<TARGET_FILE:index_fixture>)

# The same commands with a supervisor owning the index (tests/cli/test_index_supervisor.py).
kache_py_tests(cli/test_index_supervisor.py NAME cli_index_supervisor_{test} TIMEOUT 90
    ENVIRONMENT KACHED=$<TARGET_FILE:kached> FIXTURE=$<TARGET_FILE:index_fixture>
                POKE=$<TARGET_FILE:proto_poke>)
