"""`make bench-services`: hold cycles and payment intents through the services, at 1 and 4
processes, beside the raw posting baselines measured in the same run: psycopg's raw SQL on the
same database (as `make bench`) and pgbench with ../shared/bench's script at the same number of
clients. On its own throwaway database."""

from __future__ import annotations

import os
import sys

from common import fresh_bench_tenant


def main() -> int:
    import holds
    import intents
    from reconciliation import pgbench_baseline

    seconds = float(os.environ.get("ZENTRA_BENCH_SECONDS", "8"))
    tenant, _ = fresh_bench_tenant()
    print("| measurement | processes | per second | raw SQL postings/s | ratio | pgbench, same clients |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in holds.run(tenant, seconds=seconds):
        raw = pgbench_baseline(seconds, clients=row["processes"]) or 0
        print(f"| hold cycles | {row['processes']} | {row['cycles_per_second']:.0f} | {row['raw']:.0f} "
              f"| {row['cycles_per_second'] / row['raw']:.2f} | {raw:.0f} |", flush=True)
    for row in intents.run(tenant, seconds=seconds):
        raw = pgbench_baseline(seconds, clients=row["processes"]) or 0
        print(f"| intents created, confirmed and settled | {row['processes']} | {row['intents']:.0f} "
              f"| {row['raw']:.0f} | {row['ratio']:.2f} | {raw:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
