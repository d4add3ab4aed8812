"""``hotline bench core|ivr|sms|door|console``: the benchmarks live here, outside the product packages."""
from __future__ import annotations


def register(sub) -> None:
    from benchmarks import console_bench, core_bench, door_bench, ivr_bench, sms_bench

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    for module in (core_bench, ivr_bench, sms_bench, door_bench, console_bench):
        module.register_bench(bench)
