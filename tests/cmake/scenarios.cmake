# Black-box scenarios over real cargo builds of tests/fixtures/ws: the local
# cache, the directory remote, and the S3 remote (moto_server, fault proxy).
# kache_scenarios(<prefix> <script> <class> <case>...): one ctest entry a case.
function(kache_scenarios prefix script class)
  foreach(case ${ARGN})
    add_test(NAME ${prefix}${case}
             COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/scenarios/${script}
                     $<TARGET_FILE:kache> ${class}.test_${case})
    set_tests_properties(${prefix}${case} PROPERTIES TIMEOUT 600 LABELS scenario)
  endforeach()
endfunction()

if(TARGET kache AND TARGET kached)
  kache_scenarios(scenario_ test_cargo.py Scenarios
      cold_then_warm_all_hits edit_misses_crate_and_dependents_only
      env_dep_change_misses moved_checkout_other_cargo_home_hits
      failing_compile_passes_through_and_is_not_stored
      corrupted_blob_is_detected_and_rebuilt unusable_store_still_builds
      two_builds_at_once_on_one_store pass_through_is_byte_identical
      disabled_passes_everything_through config_names_unknown_keys_and_sources
      flipped_entry_depinfo_is_recompiled_once_then_hits verify_names_damaged_entry_and_manifest
      new_store_is_private_unless_shared)
  kache_scenarios(scenario_remote_ test_cargo.py RemoteScenarios
      second_machine_served_from_the_remote corrupted_remote_pack_is_compiled_locally
      stopped_supervisor_never_stalls_a_build pack_sum_is_the_documented_one
      secret_env_dep_never_stored_nor_uploaded)
  kache_scenarios(scenario_race_ test_cargo.py RaceScenarios
      source_rewritten_in_place_mtime_set_back source_replaced_by_rename_mtime_set_back
      source_deleted_and_recreated_mtime_set_back extern_rlib_replaced_during_compile)
  kache_scenarios(scenario_hostile_ test_cargo.py HostileStoreScenarios
      blob_fifo blob_symlink entry_fifo entry_symlink manifest_fifo manifest_symlink
      memo_fifo memo_symlink_to_a_wrong_hash)
  kache_scenarios(scenario_s3_ test_s3.py S3Scenarios
      second_machine_served_from_s3 bucket_is_readable_without_kache
      503_storm_loses_nothing slow_responses hanging_fetches_fall_back_to_compiling
      truncated_and_flipped_bodies_never_enter_the_store
      wrong_credentials_one_message_and_intents_kept missing_bucket_one_message
      read_only_runner_never_writes)
endif()
if(TARGET kache AND TARGET kached)
  kache_scenarios(scenario_flush_ test_flush.py FlushS3
      stop_right_after_build_uploads_everything flush_keeps_the_supervisor_running
      flush_timeout_names_what_is_left remote_switched_off_pauses_uploads)
  kache_scenarios(scenario_flush_ test_flush.py FlushLocal
      stop_after_build_dir_remote flush_without_remote_says_so
      stale_pending_markers_do_not_stall_the_build flush_waits_for_live_stores_only)
endif()
# Crash consistency: kill -9 at random points (tests/scenarios/test_crash.py).
if(TARGET kache AND TARGET kached)
  kache_scenarios(scenario_crash_ test_crash.py CrashLoop
      kill9_wrappers_while_storing_and_restoring kill9_supervisor_during_dir_remote_imports)
  kache_scenarios(scenario_crash_ test_crash.py GcAfterKill9
      gc_reclaims_temporaries_left_by_kill9)
  add_library(slow_rename SHARED ${CMAKE_CURRENT_SOURCE_DIR}/tools/slow_rename.c)
  target_link_libraries(slow_rename PRIVATE ${CMAKE_DL_LIBS})
  set_target_properties(slow_rename PROPERTIES COMPILE_OPTIONS "-Wall;-Wextra;-Werror"
      LINK_OPTIONS "")
  set_tests_properties(scenario_crash_gc_reclaims_temporaries_left_by_kill9 PROPERTIES
      ENVIRONMENT "KACHE_SLOW_RENAME=$<TARGET_FILE:slow_rename>")
  kache_scenarios(scenario_shared_ test_shared.py SharedRemote
      two_machines_upload_the_same_keys_at_once)
  kache_scenarios(scenario_s3_ test_s3.py S3Scenarios two_machines_upload_the_same_keys_at_once)
  # Heavy and many-process: alone, so the load they make does not eat into the
  # other scenarios' short deadlines.
  set_tests_properties(scenario_crash_kill9_wrappers_while_storing_and_restoring
      scenario_crash_kill9_supervisor_during_dir_remote_imports
      scenario_crash_gc_reclaims_temporaries_left_by_kill9
      scenario_shared_two_machines_upload_the_same_keys_at_once
      scenario_s3_two_machines_upload_the_same_keys_at_once PROPERTIES RUN_SERIAL TRUE)
endif()
