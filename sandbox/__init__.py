"""Local stand-ins for the real peers, started by the project's own code: Asterisk in a
cached sid root, SIP callers from sipp, SMSCs, PostgreSQL. Used by the demo, the
end-to-end tests and the benchmarks; all of them listen on loopback only."""
