# Black-box scenarios over real cargo builds of tests/fixtures/ws: the local
# cache and the directory remote (the S3 ones: tests/cmake/s3.cmake). Each
# class's cases are discovered; its ctest names keep its prefix.
if(TARGET kache AND TARGET kached)
  foreach(pair "Scenarios;scenario_" "RemoteScenarios;scenario_remote_"
               "RaceScenarios;scenario_race_" "HostileStoreScenarios;scenario_hostile_")
    list(GET pair 0 class)
    list(GET pair 1 prefix)
    kache_py_tests(scenarios/test_cargo.py CLASS ${class} NAME ${prefix}{case}
        TIMEOUT 600 LABELS scenario ARGS $<TARGET_FILE:kache>)
  endforeach()
  kache_py_tests(scenarios/test_flush.py NAME scenario_flush_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache>)
endif()
