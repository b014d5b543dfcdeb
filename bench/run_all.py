"""`make bench`: run every benchmark and write the figures to docs/performance.md.

Each bench module has `run() -> list[dict]` (name, figure, target, ok, note), and may have a
`NOTES` string (Markdown) printed under its table. The page is rewritten from scratch each time
with the machine and the date, so it always shows one run.

`python bench/run_all.py pages ingest` runs only those benches (bench_pages.py,
bench_ingest.py) and replaces only their sections of the page, keeping the others as they were.
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402
import bench_pages  # noqa: E402
import bench_paging  # noqa: E402
import bench_schedules  # noqa: E402
from common import ROOT, machine, today  # noqa: E402

MODULES = [
    ("Schedules (issue #3)", bench_schedules),
    ("Alert ingest (issue #4)", bench_ingest),
    ("Paging latency (issue #4)", bench_paging),
    ("Pages at scale (issue #5)", bench_pages),
]
PAGE = ROOT / "docs" / "performance.md"


def _short(module) -> str:
    return module.__name__.removeprefix("bench_")


def _replace_sections(page: str, sections: dict[str, str]) -> str:
    """The page with the `## title` sections given replaced (or added at the end)."""
    for title, section in sections.items():
        pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
        if pattern.search(page):
            text = section.rstrip() + "\n\n"
            page = pattern.sub(lambda _, text=text: text, page, count=1)
        else:
            page = page.rstrip() + "\n\n" + section
    return page.rstrip()


def main(names: list[str] | None = None) -> int:
    names = names or []
    known = {_short(module) for _, module in MODULES}
    unknown = sorted(set(names) - known)
    if unknown:
        print(f"unknown bench(es) {', '.join(unknown)}; choose among {', '.join(sorted(known))}")
        return 2
    chosen = [(t, m) for t, m in MODULES if not names or _short(m) in names]
    sections = []
    failed = 0
    for title, module in chosen:
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
        notes = getattr(module, "NOTES", "").strip()
        if notes:
            lines += ["", notes]
        sections.append("\n".join(lines))
    if names and PAGE.exists():
        titles = [title for title, _ in chosen]
        replaced = _replace_sections(PAGE.read_text(), dict(zip(titles, sections, strict=True)))
        PAGE.write_text(replaced + "\n")
        print(f"replaced {', '.join(titles)} in docs/performance.md ({failed} target(s) missed)")
        return 0
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
    PAGE.write_text(page + "\n")
    print(f"written to docs/performance.md ({failed} target(s) missed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
