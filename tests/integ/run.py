#!/usr/bin/env python3
"""Run berth's integration tests (tests/integ/test_*.py) with unittest.

Usage: python3 tests/integ/run.py [-k PATTERN]... [-f] [MODULE...]
  -k PATTERN   only run tests whose id (module.Class.test) contains PATTERN (fnmatch
               wildcards allowed; repeatable: any pattern matches)
  -f           stop at the first failure
  MODULE       restrict to these modules (e.g. test_layers or test_layers.py)

The last line of output is always `integ: N passed, N failed, N skipped`; the exit status is
non-zero when anything failed (failed counts failures, errors, unexpected successes, tests
that could not run because their module/class setup failed, and ThreadSanitizer report files
no test claimed: see berthctl.py).
"""

import argparse
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose id contains PATTERN")
    ap.add_argument("-f", "--failfast", action="store_true")
    ap.add_argument("modules", nargs="*")
    args = ap.parse_args(argv)

    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = [p if "*" in p else "*%s*" % p for p in args.patterns]
    if args.modules:
        suite = unittest.TestSuite()
        for m in args.modules:
            m = os.path.basename(m)
            if m.endswith(".py"):
                m = m[:-3]
            suite.addTests(loader.loadTestsFromName(m))
    else:
        suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    total = suite.countTestCases()
    runner = unittest.TextTestRunner(verbosity=2, failfast=args.failfast, stream=sys.stdout)
    sys.stdout.flush()
    result = runner.run(suite)

    # failing subTests are reported individually; count their parent test once
    real = [getattr(t, "test_case", t) for t, _ in result.failures + result.errors
            if isinstance(t, unittest.TestCase)
            and not isinstance(t, unittest.suite._ErrorHolder)]
    holders = [t for t, _ in result.errors if isinstance(t, unittest.suite._ErrorHolder)]
    # Import/load failures show up as tests of unittest.loader._FailedTest: real tests (counted).
    not_run = max(0, total - result.testsRun) if not args.failfast else 0
    # A setUp* holder error means its tests never ran (covered by not_run); a tearDown*
    # holder error (e.g. the server did not exit 0 on SIGTERM) counts as one failure.
    teardown_errors = sum(1 for h in holders if "tearDown" in str(h))
    setup_errors_unaccounted = sum(1 for h in holders if "tearDown" not in str(h)) \
        if not_run == 0 else 0
    failed = (len(set(t.id() for t in real)) + len(result.unexpectedSuccesses) + not_run
              + teardown_errors + setup_errors_unaccounted)
    # ThreadSanitizer output that no test or module cleanup claimed (berthctl.tsan_check):
    # e.g. a CLI tool's report after the last test. Each such file fails the run.
    import berthctl
    left = berthctl.tsan_reports()
    if left:
        print("\n" + berthctl.tsan_describe(left), flush=True)
        failed += len(left)
    if berthctl.TSAN_REPORTS:
        if any(os.path.getsize(os.path.join(berthctl.TSAN_REPORTS, n))
               for n in os.listdir(berthctl.TSAN_REPORTS)):
            print("ThreadSanitizer reports kept in %s" % berthctl.TSAN_REPORTS, flush=True)
        elif not os.environ.get("BERTH_TSAN_REPORTS"):
            shutil.rmtree(berthctl.TSAN_REPORTS, ignore_errors=True)
    skipped = len(result.skipped)
    passed = max(0, result.testsRun - len(set(t.id() for t in real)) - skipped
                 - len(result.unexpectedSuccesses))
    sys.stderr.flush()
    print("integ: %d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
