#!/usr/bin/env python3
"""Runs the integration tests (harness.py tells what they are): every area's
file, in this order, then trust.py, tls.py, players.py, ats.py and
redis_ha.py; or only the tests named on the command line."""
import os
import sys
import time
import traceback

from harness import Skip, started_env

AREAS = ("metadata", "routing", "signing", "manifests", "surrogate", "logs", "triggers", "playback",
         "trust", "tls", "players", "ats", "redis_ha")


def all_tests():
    """Each area's tests, in the order they are written."""
    mods = [__import__(a) for a in AREAS]
    return [v for m in mods for k, v in vars(m).items()
            if k.startswith("test_") and getattr(v, "__module__", "") == m.__name__]


def main():
    only = sys.argv[1:]
    passed = failed = skipped = 0
    for t in all_tests():
        if only and t.__name__ not in only:
            continue
        err = None
        t0 = time.time()
        try:
            env = started_env()
        except Exception:
            failed += 1
            print("FAIL %s (set-up)\n%s" % (t.__name__, traceback.format_exc()), flush=True)
            continue
        keep = os.environ.get("KEEP_LOGS")
        try:
            t(env)
        except Skip as e:
            env.close()
            skipped += 1
            print("skip %s: %s" % (t.__name__, e), flush=True)
            continue
        except Exception:
            err = traceback.format_exc()
        if err and keep:
            print(env.log("dcdn")[-4000:])
            print(env.log("dcdn-se")[-6000:])
            print(env.log("ucdn")[-6000:])
        problems = env.close()
        if problems and not err:
            err = "\n".join(problems)
        if err:
            failed += 1
            print("FAIL %s\n%s" % (t.__name__, err), flush=True)
        else:
            passed += 1
            print("ok   %s (%.1f s)" % (t.__name__, time.time() - t0), flush=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
