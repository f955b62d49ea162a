# Black-box scenarios over real cargo builds of tests/fixtures/ws: the local
# cache and the directory remote (the S3 ones: tests/cmake/s3.cmake). Each
# class's cases are discovered; its ctest names keep its prefix.
if(TARGET kache AND TARGET kached)
  foreach(pair "Scenarios;scenario_" "RemoteScenarios;scenario_remote_"
               "RaceScenarios;scenario_race_" "HostileStoreScenarios;scenario_hostile_"
               "MemoRecordScenarios;scenario_memo_")
    list(GET pair 0 class)
    list(GET pair 1 prefix)
    kache_py_tests(scenarios/test_cargo.py CLASS ${class} NAME ${prefix}{case}
        TIMEOUT 600 LABELS scenario ARGS $<TARGET_FILE:kache>)
  endforeach()
  kache_py_tests(scenarios/test_flush.py NAME scenario_flush_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
# Crash consistency: kill -9 at random points (tests/scenarios/test_crash.py), and
# two machines uploading the same keys to one dir remote (test_shared.py).
if(TARGET kache AND TARGET kached)
  kache_py_tests(scenarios/test_crash.py NAME scenario_crash_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache>)
  kache_py_tests(scenarios/test_shared.py NAME scenario_shared_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache>)
  add_library(slow_rename SHARED ${CMAKE_CURRENT_SOURCE_DIR}/tools/slow_rename.c)
  target_link_libraries(slow_rename PRIVATE ${CMAKE_DL_LIBS})
  set_target_properties(slow_rename PROPERTIES COMPILE_OPTIONS "-Wall;-Wextra;-Werror"
      LINK_OPTIONS "")
  set_tests_properties(scenario_crash_gc_reclaims_temporaries_left_by_kill9 PROPERTIES
      ENVIRONMENT "KACHE_SLOW_RENAME=$<TARGET_FILE:slow_rename>")
  # Heavy and many-process: alone, so the load they make does not eat into the
  # other scenarios' short deadlines (the S3 one: tests/cmake/s3.cmake).
  set_tests_properties(scenario_crash_kill9_wrappers_while_storing_and_restoring
      scenario_crash_kill9_supervisor_during_dir_remote_imports
      scenario_crash_gc_reclaims_temporaries_left_by_kill9
      scenario_shared_two_machines_upload_the_same_keys_at_once PROPERTIES RUN_SERIAL TRUE)
endif()
# Prefetch: a fresh runner warmed from the remote (tests/scenarios/test_prefetch.py).
if(TARGET kache AND TARGET kached)
  kache_py_tests(scenarios/test_prefetch.py NAME scenario_prefetch_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache>)
  # what a user sees of it: stats, status, a fresh runner, the hint
  kache_py_tests(scenarios/test_prefetch_stats.py NAME scenario_pfstats_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
# Signed remotes over the directory remote (tests/scenarios/test_signing.py;
# the S3 class: tests/cmake/s3.cmake).
if(TARGET kache AND TARGET kached)
  kache_py_tests(scenarios/test_signing.py CLASS SignedDir NAME scenario_signing_{case}
      TIMEOUT 600 LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
# What proc macros read behind rustc's back (tests/scenarios/test_trace.py).
if(TARGET kache AND TARGET kached)
  kache_py_tests(scenarios/test_trace.py CLASS TraceScenarios NAME scenario_trace_{case}
      TIMEOUT 600 LABELS scenario ARGS $<TARGET_FILE:kache>)
  kache_py_tests(scenarios/test_trace.py CLASS RealProcMacros NAME scenario_trace_real_{case}
      TIMEOUT 600 LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
# kache why-miss and kache report (tests/scenarios/test_report.py).
if(TARGET kache AND TARGET kached)
  foreach(pair "WhyMiss;scenario_why_" "Report;scenario_report_")
    list(GET pair 0 class)
    list(GET pair 1 prefix)
    kache_py_tests(scenarios/test_report.py CLASS ${class} NAME ${prefix}{case}
        TIMEOUT 600 LABELS scenario ARGS $<TARGET_FILE:kache>)
  endforeach()
endif()
# C compiles through kache (`kache gcc -c ...`, wrapper/cc.c): tests/scenarios/test_cc.py.
if(TARGET kache)
  kache_py_tests(scenarios/test_cc.py NAME scenario_cc_{case} TIMEOUT 300
      LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
# cargo clippy through kache (RUSTC_WORKSPACE_WRAPPER, wrapper/driver.c):
# tests/scenarios/test_clippy.py.
if(TARGET kache AND TARGET kached)
  kache_py_tests(scenarios/test_clippy.py NAME scenario_clippy_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
