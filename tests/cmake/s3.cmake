# Tests of s3/ and of the S3 remote, all in tests/s3/: cmocka unit tests, the
# client against moto_server (directly and through tests/tools/faultproxy.py,
# checked with boto3), the S3 remote through real supervisors, and the S3
# scenarios over real cargo builds.
kache_unit_test(test_s3_sign kache_s3)
kache_unit_test(test_s3_misc kache_s3)

add_executable(s3_driver ${CMAKE_CURRENT_SOURCE_DIR}/s3/s3_driver.c)
target_link_libraries(s3_driver PRIVATE kache_s3)
add_executable(remote_driver ${CMAKE_CURRENT_SOURCE_DIR}/s3/remote_driver.c)
target_link_libraries(remote_driver PRIVATE kache_remote)

find_program(KACHE_MOTO_SERVER moto_server)
if(KACHE_MOTO_SERVER)
  kache_py_tests(s3/test_s3_moto.py WHOLE_FILE NAME test_s3_moto TIMEOUT 300
      ARGS $<TARGET_FILE:s3_driver>)
  kache_py_tests(s3/test_remote_list.py WHOLE_FILE NAME test_remote_list TIMEOUT 300
      ARGS $<TARGET_FILE:remote_driver>)
else()
  message(STATUS "moto_server not found: S3 emulator tests skipped")
endif()

kache_py_tests(s3/test_s3_supervisor.py NAME proc_remote_s3_{case} TIMEOUT 240
    RENAME test_killed_multipart_upload_leaves_nothing_then_completes=proc_remote_s3_killed_multipart_upload
    ENVIRONMENT KACHED=$<TARGET_FILE:kached> POKE=$<TARGET_FILE:proto_poke>
                FIXTURE=$<TARGET_FILE:index_fixture>)

if(TARGET kache AND TARGET kached)
  kache_py_tests(s3/test_s3_scenarios.py NAME scenario_s3_{case} TIMEOUT 600 LABELS scenario
      ARGS $<TARGET_FILE:kache>)
  kache_py_tests(s3/test_s3_flush.py NAME scenario_flush_{case} TIMEOUT 600 LABELS scenario
      ARGS $<TARGET_FILE:kache>)
  # heavy and many-process: alone (see tests/cmake/scenarios.cmake)
  set_tests_properties(scenario_s3_two_machines_upload_the_same_keys_at_once
      PROPERTIES RUN_SERIAL TRUE)
endif()
# Signed remotes over S3 (tests/scenarios/test_signing.py, class SignedS3).
if(TARGET kache AND TARGET kached AND KACHE_MOTO_SERVER)
  kache_py_tests(scenarios/test_signing.py CLASS SignedS3 NAME scenario_s3_signing_{case}
      TIMEOUT 600 LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
