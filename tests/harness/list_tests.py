#!/usr/bin/env python3
"""Prints the test cases of a Python test file, one `Class.test_name` a line: the
test_* methods each top-level class defines in its own body (inherited ones are
its base's cases, registered under the base's file). It parses the file and
runs none of it, so cmake can call it at configure time without the test's
imports (boto3, a built kache).

usage: list_tests.py FILE"""
import ast
import sys


def cases(path):
    """The (class, method) pairs of path, in the order the file defines them."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    out = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name.startswith("test_"):
                out.append((node.name, item.name))
    return out


def main():
    if len(sys.argv) != 2:
        print("usage: list_tests.py FILE", file=sys.stderr)
        return 2
    for cls, name in cases(sys.argv[1]):
        print("%s.%s" % (cls, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
