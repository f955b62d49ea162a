# bench/ws-large is well-formed (tests/bench/test_ws_large.py): the benchmarks
# themselves never run under ctest. The resolve case is reported as skipped when
# the workspace's Debian crate sources are not installed (run-tests.sh does not
# install them; bench/ws-large/setup.sh does).
kache_py_tests(bench/test_ws_large.py NAME bench_ws_large_{case} TIMEOUT 180 LABELS bench)
set_tests_properties(bench_ws_large_graph_resolves_offline_against_debian_sources
    PROPERTIES SKIP_REGULAR_EXPRESSION "OK \\(skipped=")
