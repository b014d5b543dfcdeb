"""`make bench`: run every benchmark and write the figures to docs/performance.md.

Each bench module has `run() -> list[dict]` (name, figure, target, ok, note). The page is
rewritten from scratch each time with the machine and the date, so it always shows one run.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402
import bench_paging  # noqa: E402
import bench_schedules  # noqa: E402
from common import ROOT, machine, today  # noqa: E402

MODULES = [
    ("Schedules (issue #3)", bench_schedules),
    ("Alert ingest (issue #4)", bench_ingest),
    ("Paging latency (issue #4)", bench_paging),
]


def main() -> int:
    sections = []
    failed = 0
    for title, module in MODULES:
        rows = module.run()
        lines = [
            f"## {title}",
            "",
            (module.__doc__ or "").strip(),
            "",
            "| what | figure | target | met | notes |",
            "|---|---|---|---|---|",
        ]
        for row in rows:
            met = "yes" if row["ok"] else "**no**"
            failed += 0 if row["ok"] else 1
            lines.append(
                f"| {row['name']} | {row['figure']} | {row['target']} | {met} | {row['note']} |"
            )
            print(f"{row['name']}: {row['figure']} (target {row['target']}) {row['note']}")
        sections.append("\n".join(lines))
    page = "\n\n".join(
        [
            "# Performance",
            "Written by `make bench` (scripts under `bench/`); never by the test suite. "
            "Times are wall-clock medians of repeated runs in one process.",
            f"- Machine: {machine()}\n- Date: {today()}\n"
            "- Database: a temporary SQLite file unless `DATABASE_URL` was set for the run",
            *sections,
        ]
    )
    (ROOT / "docs" / "performance.md").write_text(page + "\n")
    print(f"written to docs/performance.md ({failed} target(s) missed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
