# Tests of proto/ and supervisor/: cmocka units, and multi-process tests over
# real sockets and the real kached binary (tests/proc/).
kache_unit_test(test_proto kache_proto)

# The client the proc tests drive; linked like the wrapper (no libzmq).
add_executable(proto_poke ${CMAKE_CURRENT_SOURCE_DIR}/proc/proto_poke.c)
target_link_libraries(proto_poke PRIVATE kache_proto)

kache_py_tests(proc/test_supervisor.py NAME proc_supervisor_{test} TIMEOUT 120
    ENVIRONMENT KACHED=$<TARGET_FILE:kached> POKE=$<TARGET_FILE:proto_poke>)

# The directory remote through real supervisors (tests/proc/test_remote_dir.py);
# the S3 remote's: tests/s3/test_s3_supervisor.py (tests/cmake/s3.cmake).
kache_py_tests(proc/test_remote_dir.py NAME proc_remote_dir_{test} TIMEOUT 180
    ENVIRONMENT KACHED=$<TARGET_FILE:kached> POKE=$<TARGET_FILE:proto_poke>
                FIXTURE=$<TARGET_FILE:index_fixture>)
kache_unit_test(test_prefetch_lock kache_prefetch)
kache_unit_test(test_prefetch_planner kache_prefetch)
kache_unit_test(test_watchdog kache_supervisor)
