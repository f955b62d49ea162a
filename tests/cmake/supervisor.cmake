# Tests of proto/ and supervisor/: cmocka units, and multi-process tests over
# real sockets and the real kached binary (tests/proc/).
kache_unit_test(test_proto kache_proto)
