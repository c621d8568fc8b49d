"""Benchmark tables rendered from the committed results file, not typed by hand.

``python -m benchmarks --json PATH`` writes every table it prints, with the
cells as printed, the numbers unrounded, the notes that follow each table, the
date, the machine, its load and the versions. Two directives read such a file
(``docs/_static/benchmarks.json`` by default):

``{benchmark-run}``
    what was run, when, where and with which versions.
``{benchmark-tables}``
    the tables whose key matches one of the given patterns (``fnmatch``, for
    instance ``*.forward`` or ``small_calls``), each under its title, with its
    notes.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import Directive, directives

DEFAULT = "_static/benchmarks.json"


def load(app, name: str | None) -> tuple[Path, dict]:
    path = Path(app.srcdir) / (name or DEFAULT)
    with open(path, encoding="utf-8") as f:
        return path, json.load(f)


def table_node(columns: list[str], align: str, cells: list[list[str]]) -> nodes.table:
    table = nodes.table(classes=["benchmark-table"])
    group = nodes.tgroup(cols=len(columns))
    table += group
    for _ in columns:
        group += nodes.colspec(colwidth=1)

    def row(values, header=False):
        tr = nodes.row()
        for i, value in enumerate(values):
            entry = nodes.entry(
                classes=["bench-num"] if (i < len(align) and align[i] == "r") else []
            )
            entry += nodes.paragraph(text=str(value))
            tr += entry
        return tr

    head = nodes.thead()
    head += row(columns, header=True)
    group += head
    body = nodes.tbody()
    for values in cells:
        body += row(values)
    group += body
    return table


class _ResultsDirective(Directive):
    option_spec: ClassVar[dict] = {"file": directives.unchanged}

    def results(self) -> tuple[Path, dict]:
        env = self.state.document.settings.env
        try:
            path, data = load(env.app, self.options.get("file"))
        except (OSError, ValueError) as err:
            raise self.error(
                f"cannot read the benchmark results ({err}); write them with python -m benchmarks --json"
            ) from err
        env.note_dependency(str(path))
        return path, data


class BenchmarkRun(_ResultsDirective):
    """A definition list: command, date, machine, load, versions of the results file."""

    def run(self):
        path, data = self.results()
        started = datetime.datetime.fromisoformat(data["started"])
        finished = datetime.datetime.fromisoformat(data["finished"])
        machine = data["machine"]
        load = data["load_average"]
        versions = ", ".join(f"{k} {v}" for k, v in data["versions"].items())
        items = [
            ("Command", " ".join(data["command"])),
            ("Date", f"{started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC"),
            (
                "Machine",
                f"{machine['cpu']}, {machine['cores']} cores ({machine['platform']})",
            ),
            (
                "Load average",
                "at the start "
                + " ".join(f"{v:.2f}" for v in load["start"])
                + "; at the end "
                + " ".join(f"{v:.2f}" for v in load["end"]),
            ),
            (
                "Versions",
                f"xcorr {data.get('xcorr_version')}, Python {data['python']}, {versions}",
            ),
            (
                "Results file",
                f"docs/{path.relative_to(Path(self.state.document.settings.env.srcdir)).as_posix()}",
            ),
        ]
        dl = nodes.definition_list(classes=["benchmark-run"])
        for term, text in items:
            item = nodes.definition_list_item()
            item += nodes.term(text=term)
            definition = nodes.definition()
            paragraph = nodes.paragraph()
            # the command as typed (a literal: no typographic dashes for its "--" options)
            paragraph += (
                nodes.literal(text=text)
                if term in ("Command", "Results file")
                else nodes.Text(text)
            )
            definition += paragraph
            item += definition
            dl += item
        out: list[nodes.Node] = [dl]
        peak = max(load["start"][0], load["end"][0])
        if (
            peak > machine["cores"]
        ):  # more runnable threads than cores: other work shared the machine
            note = nodes.warning()
            note += nodes.paragraph(
                text=(
                    f"The machine was loaded during this run (load average up to {peak:.1f} on "
                    f"{machine['cores']} cores): other jobs shared its cores. Every time is slower than on "
                    "a quiet machine, and not evenly: libraries that split one call over a thread pool "
                    "(torch's F.conv2d, for one) lose most, which flatters xcorr's ratios against them. "
                    "Rerun the command above on a quiet machine for numbers to quote."
                )
            )
            out.append(note)
        return out


class BenchmarkTables(_ResultsDirective):
    """The tables whose key matches a pattern given as argument, each with its title and notes."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self):
        _, data = self.results()
        patterns = self.arguments[0].split()
        chosen = [
            t
            for t in data["tables"]
            if any(fnmatch.fnmatchcase(t["key"], p) for p in patterns)
        ]
        if not chosen:
            raise self.error(
                f"no benchmark table matches {patterns}; the file has {[t['key'] for t in data['tables']]}"
            )
        out: list[nodes.Node] = []
        for t in chosen:
            if "cells" not in t:
                raise self.error(
                    f"table {t['key']} has no 'cells': write the file with the current benchmarks"
                )
            title = nodes.paragraph(classes=["benchmark-title"])
            title += nodes.strong(text=t["title"])
            out.append(title)
            if t["cells"]:
                out.append(table_node(t["columns"], t.get("align", ""), t["cells"]))
            for note in t.get("notes", []):
                out.append(nodes.paragraph(text=note, classes=["benchmark-note"]))
        return out


def setup(app):
    app.add_directive("benchmark-run", BenchmarkRun)
    app.add_directive("benchmark-tables", BenchmarkTables)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
