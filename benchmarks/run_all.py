"""`make bench`: every benchmark with small defaults (a few minutes), results to benchmarks/RESULTS.md.

Each benchmark prints its own figures, including its baseline measured in the same run; this collects
their output verbatim. NTPSWF_BENCH_FULL=1 runs the sizes issue #8 names (100,000 finished and 10,000 running
cases over HTTP, 1,000 timers due at once among 100,000; about five minutes on 2 cores); NTPSWF_BENCH_POSTGRES_URL
adds the PostgreSQL runs (1 and 2 processes) on a scratch database (the timer benchmark replaces its tables; the
load benchmark works in schemas bench_small and bench_large and drops them). Other sizes: call the scripts
directly (see each docstring).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
FULL = os.environ.get("NTPSWF_BENCH_FULL") == "1"
HTTP = ["100000", "10000", "2000"] if FULL else ["5000", "1000", "1000"]
TIMERS = ["100000", "1000"] if FULL else ["20000", "300"]
SUITE = [
    ("Engine throughput vs bare SpiffWorkflow", ["engine.py", "1000" if FULL else "200"]),
    ("Timers: due -> fired, throughput, idle poll", ["timers.py", *TIMERS]),
    ("Storage per case", ["storage.py"]),
    ("Case age: a step's cost by the case's age (issue 21)", ["case_age.py", "36", "5"]),
    ("Case age on the policies: a three-year placement, a pay progression case (issue 21)",
     ["case_age_policies.py", "3"]),
    ("HTTP load, SQLite, 1 process", ["http_load.py", *HTTP]),
]


def main() -> None:
    postgres = os.environ.get("NTPSWF_BENCH_POSTGRES_URL")
    suite = list(SUITE)
    if postgres:
        suite += [("HTTP load, PostgreSQL, 1 process", ["http_load.py", *HTTP, postgres, "1"]),
                  ("HTTP load, PostgreSQL, 2 processes", ["http_load.py", *HTTP, postgres, "2"]),
                  ("Timers, PostgreSQL, 2 scheduler processes",
                   ["timers.py", *TIMERS, postgres, "--schedulers", "2"])]
    sections = []
    for title, args in suite:
        print(f"== {title}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], capture_output=True, text=True,
                              timeout=3600 if FULL else 600, check=False)
        output = (done.stdout.strip() or done.stderr.strip()[-2000:])
        print(output, flush=True)
        sections.append(f"## {title}\n\n`python benchmarks/{' '.join(args)}` ({time.perf_counter() - started:.0f} s)"
                        f"\n\n```\n{output}\n```\n")
    header = (f"# Benchmark results\n\nWritten by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}; {'full sizes (NTPSWF_BENCH_FULL=1)' if FULL else 'small sizes'}. "
              "Set NTPSWF_BENCH_POSTGRES_URL to add the PostgreSQL runs.\n")
    (HERE / "RESULTS.md").write_text(header + "\n" + "\n".join(sections))
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
