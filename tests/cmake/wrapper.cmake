# Unit tests of the wrapper's parser, roots, dep-info and keys.
kache_unit_test(test_wrapper kache_wrapper)
kache_unit_test(test_store kache_store)
