"""Local stand-ins of external services sdedge talks to, implementing their documented protocols.

The public services cannot be reached from the test machines, so each stand-in here serves the
documented requests, answers and errors on 127.0.0.1 from a thread, and records what it received.
"""
