# The planner service (planner/, docs/planner.md): black-box over real HTTP
# against kache-planner on loopback; the from-remote cases over moto_server.
if(TARGET kache-planner)
  kache_py_tests(planner/test_planner.py NAME planner_{class}.{case} TIMEOUT 180
      ARGS $<TARGET_FILE:kache-planner>)
endif()
# The client (tests/planner/test_planner_client.py): runners posting to and
# prefetching through the real kache-planner, over real cargo builds.
if(TARGET kache-planner AND TARGET kache AND TARGET kached)
  kache_py_tests(planner/test_planner_client.py NAME planner_client_{case} TIMEOUT 600
      LABELS scenario ARGS $<TARGET_FILE:kache> $<TARGET_FILE:kache-planner>)
endif()
