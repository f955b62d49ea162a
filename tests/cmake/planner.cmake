# The planner service (planner/, docs/planner.md): black-box over real HTTP
# against kache-planner on loopback; the from-remote cases over moto_server.
if(TARGET kache-planner)
  kache_py_tests(planner/test_planner.py NAME planner_{class}.{case} TIMEOUT 180
      ARGS $<TARGET_FILE:kache-planner>)
endif()
