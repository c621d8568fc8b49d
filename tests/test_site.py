"""The documentation site's sources: complete and consistent without building it.

CI builds the site itself (``python -m sphinx -W``, see .ci/run); these checks are the cheap part:
the API page covers every public name, the user guide picks up new pages, and the committed
benchmark results hold what the pages render.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

import xcorr

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_api_reference_documents_every_public_name(xcorr_api):
    assert xcorr_api.MARKER in (DOCS / "api.md").read_text(encoding="utf-8")
    text = xcorr_api.render(xcorr)
    documented = re.findall(
        r"^\.\. auto(?:function|class|module):: xcorr\.(\w+)$", text, flags=re.MULTILINE
    )
    assert sorted(documented) == sorted(xcorr.__all__)


def test_a_new_public_name_joins_a_group(xcorr_api):

    class Fake:
        __name__ = "fake"
        __all__: ClassVar[list[str]] = [
            "corr2d",
            "conv_transpose2d",
            "corr2d_jvp",
            "Conv2DTranspose",
            "something",
        ]
        corr2d = staticmethod(xcorr.corr2d)

        @staticmethod
        def conv_transpose2d(x, k):
            return x

        @staticmethod
        def corr2d_jvp(x, k):
            return x

        class Conv2DTranspose:
            pass

        something = 1

    groups = {title: names for title, _, names in xcorr_api.grouped(Fake)}
    assert groups["Correlation and convolution"] == ["corr2d", "conv_transpose2d"]
    assert groups["Gradients"] == ["corr2d_jvp"]
    assert groups["Layers and training"] == ["Conv2DTranspose"]
    assert groups["More"] == ["something"]


def test_user_guide_takes_every_page_in_its_folder():
    index = (DOCS / "guide" / "index.md").read_text(encoding="utf-8")
    toctree = index.split("```{toctree}", 1)[1].split("```", 1)[0]
    assert ":glob:" in toctree and "\n*\n" in toctree
    listed = [
        line
        for line in toctree.splitlines()
        if line and not line.startswith(":") and line != "*"
    ]
    for name in listed:
        assert (DOCS / "guide" / f"{name}.md").is_file(), name


def test_benchmark_results_hold_what_the_pages_render():
    # the file docs/_ext/benchmark_tables.py renders by default (it imports docutils: not loaded here)
    assert 'DEFAULT = "_static/benchmarks.json"' in (
        DOCS / "_ext" / "benchmark_tables.py"
    ).read_text(encoding="utf-8")
    results = json.loads(
        (DOCS / "_static" / "benchmarks.json").read_text(encoding="utf-8")
    )
    for key in (
        "started",
        "finished",
        "command",
        "machine",
        "load_average",
        "python",
        "versions",
    ):
        assert key in results, key
    assert results["machine"]["cpu"] and results["machine"]["cores"] >= 1
    keys = [t["key"] for t in results["tables"]]
    for table in results["tables"]:
        assert len(table["cells"]) == len(table["rows"]) > 0, table["key"]
        assert all(len(row) == len(table["columns"]) for row in table["cells"]), table[
            "key"
        ]
    # every pattern a page asks for matches a table of the file it names (":file:", else the default)
    import fnmatch

    tables = {"_static/benchmarks.json": keys}
    for page in DOCS.rglob("*.md"):
        for patterns, name in re.findall(
            r"^```\{benchmark-tables\} (.+)\n(?::file: (\S+)\n)?",
            page.read_text(encoding="utf-8"),
            re.MULTILINE,
        ):
            name = name or "_static/benchmarks.json"
            if name not in tables:
                other = json.loads((DOCS / name).read_text(encoding="utf-8"))
                tables[name] = [t["key"] for t in other["tables"]]
            for pattern in patterns.split():
                assert fnmatch.filter(tables[name], pattern), (
                    f"{page.name}: {pattern} matches none of {tables[name]} ({name})"
                )


def test_gallery_examples_are_scripts_with_a_title():
    examples = sorted((DOCS / "examples").glob("plot_*.py"))
    assert len(examples) >= 5
    for path in examples:
        source = path.read_text(encoding="utf-8")
        doc = source.split('"""', 2)[1].strip().splitlines()
        assert len(doc) > 2 and set(doc[1]) == {"="} and len(doc[1]) == len(doc[0]), (
            path.name
        )
        compile(source, str(path), "exec")
