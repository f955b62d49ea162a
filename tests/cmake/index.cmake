# Tests of index/ and of the commands over it (stats, gc, list, purge, verify).
kache_unit_test(test_index kache_index)
add_executable(index_fixture ${CMAKE_CURRENT_SOURCE_DIR}/tools/index_fixture.c)
target_link_libraries(index_fixture PRIVATE kache_store)
add_test(NAME cli_index
         COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_index_cli.py
                 $<TARGET_FILE:kached> $<TARGET_FILE:index_fixture>)
set_tests_properties(cli_index PROPERTIES TIMEOUT 120)

# The same commands with a supervisor owning the index (tests/cli/test_index_supervisor.py).
set(kache_index_sup_tests
    test_stats_same_with_and_without_supervisor test_list_through_supervisor
    test_gc_through_supervisor_evicts test_periodic_gc_applies_max_size
    test_supervisor_ingests_journal_on_its_own
    test_ingested_records_published_as_events test_stopped_supervisor_cli_works_directly
    test_verify_and_purge_through_supervisor test_scale_indexer_refused
    test_indexer_killed_restarts_and_ingest_continues
    test_supervisor_parent_holds_no_index_file
    test_index_held_at_start_is_retried test_hung_supervisor_clear_error
    test_verify_progress_through_supervisor test_progress_without_supervisor
    test_malformed_progress_from_a_stranger)
foreach(t ${kache_index_sup_tests})
  add_test(NAME cli_index_supervisor_${t}
           COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_index_supervisor.py
                   IndexSupervisor.${t})
  set_tests_properties(cli_index_supervisor_${t} PROPERTIES TIMEOUT 90
      ENVIRONMENT "KACHED=$<TARGET_FILE:kached>;FIXTURE=$<TARGET_FILE:index_fixture>;POKE=$<TARGET_FILE:proto_poke>")
endforeach()
