#!/usr/bin/python3
"""Stands in for a required suite that this machine cannot build or run (registered by CMake in
its place): fails with the reason, or is skipped when CRM_TEST_ALLOW_SKIP names the suite.

Usage: suite_unavailable.py SUITE REASON
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crm_testlib import OPTIONAL_SUITES, suite_unavailable  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in OPTIONAL_SUITES:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(OPTIONAL_SUITES)}}} REASON")
    sys.exit(suite_unavailable(sys.argv[1], sys.argv[2]))
