"""Switchboard tests (a package, so the test trees share helpers such as `redis_testing`)."""
