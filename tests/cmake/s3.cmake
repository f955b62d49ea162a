# Tests of s3/: cmocka unit tests, and end-to-end tests against moto_server
# (directly and through tests/tools/faultproxy.py), checked with boto3.
kache_unit_test(test_s3_sign kache_s3)
kache_unit_test(test_s3_misc kache_s3)

add_executable(s3_driver ${CMAKE_CURRENT_SOURCE_DIR}/s3/s3_driver.c)
target_link_libraries(s3_driver PRIVATE kache_s3)
add_executable(remote_driver ${CMAKE_CURRENT_SOURCE_DIR}/s3/remote_driver.c)
target_link_libraries(remote_driver PRIVATE kache_remote)

find_program(KACHE_MOTO_SERVER moto_server)
find_package(Python3 COMPONENTS Interpreter)
if(KACHE_MOTO_SERVER AND Python3_FOUND)
  add_test(NAME test_s3_moto
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/s3/test_s3_moto.py
                   $<TARGET_FILE:s3_driver>)
  set_tests_properties(test_s3_moto PROPERTIES TIMEOUT 300)
  add_test(NAME test_remote_list
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/s3/test_remote_list.py
                   $<TARGET_FILE:remote_driver>)
  set_tests_properties(test_remote_list PROPERTIES TIMEOUT 300)
else()
  message(STATUS "moto_server or python3 not found: S3 emulator tests skipped")
endif()
