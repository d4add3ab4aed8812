from sandbox.pytest_asterisk import *  # noqa: F401,F403  (Asterisk and sipp fixtures)
