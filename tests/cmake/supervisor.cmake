# Tests of proto/ and supervisor/: cmocka units, and multi-process tests over
# real sockets and the real kached binary (tests/proc/).
kache_unit_test(test_proto kache_proto)

# The client the proc tests drive; linked like the wrapper (no libzmq).
add_executable(proto_poke ${CMAKE_CURRENT_SOURCE_DIR}/proc/proto_poke.c)
target_link_libraries(proto_poke PRIVATE kache_proto)

find_program(PYTHON3 python3)
set(kache_proc_tests
    test_start_status_stop test_kill9_worker_restarts test_stalled_worker_is_replaced
    test_crash_loop_backs_off_and_fails test_config_error_worker_not_restarted
    test_sigstop_supervisor_client_times_out test_kill9_supervisor_no_orphans_and_recovery
    test_two_starts_one_supervisor test_ensure_many_wrappers_one_supervisor
    test_malformed_messages test_unsafe_socket_dir_refused
    test_long_store_path_gets_short_socket_dir test_scale test_uploaders_from_environment
    test_fetcher_count_survives_reload
    test_upload_and_fetch_plumbing test_slow_fetch_is_acknowledged_then_answered
    test_no_remote_queues_nothing test_install_without_systemd
    test_client_does_not_link_libzmq
    test_two_runs_at_once_loser_exits_0_naming_the_winner
    test_flood_of_bad_messages_is_rate_limited test_stop_as_another_user_names_the_owner)
foreach(t ${kache_proc_tests})
  add_test(NAME proc_supervisor_${t}
           COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/proc/test_supervisor.py
                   SupervisorTest.${t})
  set_tests_properties(proc_supervisor_${t} PROPERTIES TIMEOUT 120
      ENVIRONMENT "KACHED=$<TARGET_FILE:kached>;POKE=$<TARGET_FILE:proto_poke>")
endforeach()

# The directory remote through real supervisors (tests/proc/test_remote_dir.py).
foreach(t test_burst_of_200_uploads_over_4_uploaders test_fetch_imports_into_another_store
          test_corrupt_pack_is_rejected)
  add_test(NAME proc_remote_dir_${t}
           COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/proc/test_remote_dir.py
                   RemoteDirTest.${t})
  set_tests_properties(proc_remote_dir_${t} PROPERTIES TIMEOUT 180
      ENVIRONMENT "KACHED=$<TARGET_FILE:kached>;POKE=$<TARGET_FILE:proto_poke>;FIXTURE=$<TARGET_FILE:index_fixture>")
endforeach()

# The S3 remote through real supervisors, moto_server and the fault proxy.
add_test(NAME proc_remote_s3_killed_multipart_upload
         COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/proc/test_remote_s3.py
                 RemoteS3Test.test_killed_multipart_upload_leaves_nothing_then_completes)
set_tests_properties(proc_remote_s3_killed_multipart_upload PROPERTIES TIMEOUT 240
    ENVIRONMENT "KACHED=$<TARGET_FILE:kached>;POKE=$<TARGET_FILE:proto_poke>;FIXTURE=$<TARGET_FILE:index_fixture>")
kache_unit_test(test_prefetch_lock kache_prefetch)
