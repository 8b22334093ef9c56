"""The course website (book/): the README's build command passes with warnings as errors, every notebook
has a page built from its stored outputs, and a broken internal link fails the build."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jupyter_book", reason="jupyter-book is not installed (pip install -e '.[dev]')")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _readme_command() -> list[str]:
    """The build command of the README's "Course website" section, as an argument list."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Course website", 1)[1].split("\n## ", 1)[0]
    line = next(s.strip() for s in section.splitlines() if s.strip().startswith("jupyter-book build"))
    return shlex.split(line.split("#", 1)[0])


def _build(args: list[str], cwd: Path, out: Path) -> subprocess.CompletedProcess:
    """Run jupyter-book (the one installed next to this Python) with `--path-output` set to `out`."""
    args = list(args)
    if "--path-output" in args:
        args[args.index("--path-output") + 1] = str(out)
    else:
        args += ["--path-output", str(out)]
    main = "import sys; from jupyter_book.cli.main import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", main, *args[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    args = _readme_command()
    assert {"-W", "-n"} <= set(args), "the site must be built with warnings as errors (-W) and nitpicky (-n)"
    done = _build(args, ROOT, out)
    assert done.returncode == 0, f"site build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert "build succeeded" in done.stdout and "warning" not in done.stdout.split("build succeeded")[1][:40]
    return out / "_build" / "html"


@pytest.mark.committed
def test_every_notebook_has_a_page_with_its_stored_outputs(site):
    assert len(NOTEBOOKS) == 7
    for stem in NOTEBOOKS:
        page = site / "notebooks" / f"{stem}.html"
        assert page.is_file(), f"no page for notebooks/{stem}.ipynb"
        html = page.read_text()
        number = stem[:2]
        assert re.search(rf"<h1>{number} · ", html), f"{stem}: the notebook's title is not the page title"
        assert "<img" in html and 'class="cell_output' in html, f"{stem}: stored outputs are missing"
    # no output was computed for the site: the pages hold what the committed notebooks hold
    anatomy = (site / "notebooks" / "01_adapter_anatomy.html").read_text()
    assert "identity at init (std 0)" in anatomy and "init std 1e-02, adapter size 64" in anatomy
    assert "application/vnd.jupyter.widget-state+json" in anatomy  # the explorers' stored state


@pytest.mark.committed
def test_landing_page_links_every_notebook_and_the_paper(site):
    index = (site / "index.html").read_text()
    assert "book/intro.html" in index  # redirect to the landing page
    intro = (site / "book" / "intro.html").read_text()
    for stem in NOTEBOOKS:
        assert f'href="../notebooks/{stem}.html"' in intro, f"the landing page does not link {stem}"
    assert 'href="https://arxiv.org/abs/1902.00751"' in intro
    assert 'id="run-it-yourself"' in intro and 'id="the-notebooks-in-order"' in intro
    assert (site / "book" / "paper_map.html").is_file()
    # navigation: every notebook page is in the sidebar's table of contents
    nav = (site / "notebooks" / "03_adapter_size_vs_parameters.html").read_text()
    for stem in NOTEBOOKS:
        assert stem.startswith("03") or f'href="{stem}.html"' in nav, f"the sidebar does not link {stem}"
    assert 'href="../book/paper_map.html"' in nav and 'href="../book/intro.html"' in nav


@pytest.mark.committed
def test_broken_internal_link_fails_the_build(tmp_path):
    """The same configuration on a one-page book whose page links a page that does not exist."""
    src = tmp_path / "src"
    (src / "book").mkdir(parents=True)
    (src / "book" / "_config.yml").write_text((ROOT / "book" / "_config.yml").read_text())
    (src / "book" / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (src / "book" / "intro.md").write_text("# Intro\n\nNext: [notebook 07](../notebooks/07_missing.ipynb).\n")
    done = _build(_readme_command(), src, tmp_path / "out")
    assert done.returncode != 0
    assert "07_missing.ipynb" in done.stdout + done.stderr
