"""The nbops sidebar in a real JupyterLab, as a person uses it: the lineage graph of the open
notebook, retagging a cell, clicking a node, diagnostics, deploying and calling the service."""

from __future__ import annotations

import json
import statistics
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from lab_session import SIDEBAR_ID, Lab

pytestmark = pytest.mark.slow

CHURN_STEPS = {"step:load", "step:features", "step:train", "step:evaluate", "step:report"}
CHURN_DATA_EDGES = {
    ("step:load", "step:features", "customers"),
    ("step:features", "step:train", "X_train, y_train"),
    ("step:features", "step:evaluate", "X_test, y_test"),
    ("step:train", "step:evaluate", "model"),
    ("step:features", "step:report", "feature_columns"),
    ("step:train", "step:report", "model"),
}
EXAMPLE_CUSTOMER = {
    "features": {
        "tenure_months": 3,
        "monthly_charges": 95.5,
        "support_calls": 4,
        "contract": "monthly",
    }
}


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    """JupyterLab with only `name` open (`reset` forgets what earlier tests opened)."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)


def open_sidebar(page: Any) -> Any:
    tab = page.locator(f'.jp-SideBar.jp-mod-left li[data-id="{SIDEBAR_ID}"]')
    tab.click()
    page.wait_for_selector(f"#{SIDEBAR_ID}", state="visible")
    return page.locator(f"#{SIDEBAR_ID}")


def widen_sidebar(page: Any, width: int = 440) -> None:
    """Drag the left area's edge, as a person does to give the graph room."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(width, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()


def wait_for_graph(page: Any, *node_ids: str, timeout: float = 30_000) -> None:
    for node_id in node_ids:
        page.wait_for_selector(
            f'[data-testid="nbops-node"][data-node-id="{node_id}"]', timeout=timeout
        )


def graph_nodes(page: Any) -> set[str]:
    ids = page.eval_on_selector_all(
        '[data-testid="nbops-node"]', "nodes => nodes.map(n => n.dataset.nodeId)"
    )
    return set(ids)


def graph_edges(page: Any) -> set[tuple[str, str, str]]:
    rows = page.eval_on_selector_all(
        '[data-testid="nbops-edge"]',
        "edges => edges.map(e => [e.dataset.source, e.dataset.target, e.dataset.artifacts])",
    )
    return {tuple(row) for row in rows}


def cell(page: Any, index: int) -> Any:
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(index)


def switch_theme(page: Any, theme: str) -> None:
    """Settings > Theme > `theme`, from the menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=theme).first.click()
    light = "true" if theme == "JupyterLab Light" else "false"
    page.wait_for_selector(f'body[data-jp-theme-light="{light}"]', state="attached")
    page.wait_for_timeout(400)


def test_sidebar_draws_the_lineage_of_the_example(page: Any, lab: Lab, artifacts: Path) -> None:
    open_notebook(page, lab, "churn.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, *CHURN_STEPS)
    nodes = graph_nodes(page)
    assert nodes >= CHURN_STEPS
    assert {"parameters", "metrics", "endpoint:predict", "test:0", "test:1", "test:2"} <= nodes
    edges = graph_edges(page)
    assert {e for e in edges if e[2]} >= CHURN_DATA_EDGES
    assert ("step:evaluate", "step:report", "") in edges  # after:evaluate
    assert ("step:train", "endpoint:predict", "model") in edges
    assert sidebar.get_by_test_id("nbops-summary").inner_text() == "5 steps · 0 errors · 0 warnings"

    # What the screenshots show: the features step (two cells) selected, the panel widened.
    widen_sidebar(page)
    node(page, "step:features").click()
    expect_selected_cells(page, [8, 9])
    assert "step:features" in sidebar.get_by_test_id("nbops-active-cell").inner_text()
    page.wait_for_timeout(300)
    sidebar.screenshot(path=str(artifacts / "sidebar-light.png"))
    page.screenshot(path=str(artifacts / "lab-light.png"))
    switch_theme(page, "JupyterLab Dark")
    try:
        sidebar.screenshot(path=str(artifacts / "sidebar-dark.png"))
        page.screenshot(path=str(artifacts / "lab-dark.png"))
    finally:
        switch_theme(page, "JupyterLab Light")


FRAME = '[data-testid="nbops-graph-frame"]'
NODE_RECTS = """nodes => Object.fromEntries(nodes.map(n => {
    const r = n.getBoundingClientRect();
    return [n.dataset.nodeId, [r.left, r.top, r.right, r.bottom]];
}))"""


def graph_frame(page: Any) -> Any:
    return page.locator(FRAME)


def graph_scale(page: Any) -> float:
    return float(graph_frame(page).get_attribute("data-scale"))


def wait_scale_change(page: Any, old: float) -> float:
    """The graph's scale once a zoom is drawn (React renders after the click returns)."""
    page.wait_for_function(
        """old => Number(document.querySelector('[data-testid="nbops-graph-frame"]')
            ?.dataset.scale) !== old""",
        arg=old,
    )
    return graph_scale(page)


def wait_fitted(page: Any) -> float:
    """The scale of the graph once it follows the panel again (after two frames, so that a
    resize the fit caused has been seen too)."""
    page.wait_for_selector(f'{FRAME}[data-fitted="true"]:not([data-scale=""])')
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return graph_scale(page)


def rect(box: dict[str, float]) -> tuple[float, float, float, float]:
    return (box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"])


def nodes_outside(page: Any, box: tuple[float, float, float, float]) -> list[str]:
    """The nodes whose drawn box is not entirely inside `box` (left, top, right, bottom)."""
    rects = page.eval_on_selector_all('[data-testid="nbops-node"]', NODE_RECTS)
    left, top, right, bottom = box
    return sorted(
        node_id
        for node_id, (x0, y0, x1, y1) in rects.items()
        if x0 < left - 0.5 or y0 < top - 0.5 or x1 > right + 0.5 or y1 > bottom + 0.5
    )


def frame_rect(page: Any) -> tuple[float, float, float, float]:
    """The graph's visible area: the frame's client box, scrollbars excluded."""
    left, top, right, bottom = graph_frame(page).evaluate(
        """f => { const r = f.getBoundingClientRect();
            const x = r.left + f.clientLeft, y = r.top + f.clientTop;
            return [x, y, x + f.clientWidth, y + f.clientHeight]; }"""
    )
    return (left, top, right, bottom)


def test_lineage_fits_the_sidebar_at_its_default_width(
    page: Any, lab: Lab, artifacts: Path
) -> None:
    open_notebook(page, lab, "churn.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, *CHURN_STEPS)
    scale = wait_fitted(page)
    panel = rect(sidebar.bounding_box())
    width = panel[2] - panel[0]
    assert width < 300, f"the left area is {width}px: not JupyterLab's default width"
    assert scale >= float(graph_frame(page).get_attribute("data-min-scale"))
    assert nodes_outside(page, panel) == []
    assert nodes_outside(page, frame_rect(page)) == []
    assert len(graph_nodes(page)) == 11
    # /predict_batch shares /predict's node (the same model): side by side they overflowed.
    assert "+ /predict_batch" in page.locator('[data-node-id="endpoint:predict"]').text_content()
    sidebar.screenshot(path=str(artifacts / "sidebar-fit-light.png"))
    switch_theme(page, "JupyterLab Dark")
    try:
        assert nodes_outside(page, frame_rect(page)) == []
        sidebar.screenshot(path=str(artifacts / "sidebar-fit-dark.png"))
    finally:
        switch_theme(page, "JupyterLab Light")


def center(box: dict[str, float]) -> tuple[float, float]:
    return (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_wheel_zooms_about_the_pointer_a_drag_pans_and_fit_restores(page: Any, lab: Lab) -> None:
    open_notebook(page, lab, "churn.ipynb")
    open_sidebar(page)
    wait_for_graph(page, *CHURN_STEPS)
    fitted = wait_fitted(page)
    train = node(page, "step:train")

    # The wheel zooms in, about the pointer: the node under it stays under it.
    x, y = center(train.bounding_box())
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)
    page.wait_for_selector(f'{FRAME}[data-fitted="false"]')
    zoomed = graph_scale(page)
    assert zoomed > fitted * 1.5
    x2, y2 = center(train.bounding_box())
    assert abs(x2 - x) < 2 and abs(y2 - y) < 2, ((x, y), (x2, y2))
    assert nodes_outside(page, frame_rect(page)) != []  # zoomed in: part of the graph is out

    # A drag pans (the frame scrolls with it) and selects nothing.
    scrolled = graph_frame(page).evaluate("f => [f.scrollLeft, f.scrollTop]")
    page.mouse.down()
    page.mouse.move(x - 40, y - 30, steps=6)
    page.mouse.up()
    page.wait_for_timeout(200)
    panned = graph_frame(page).evaluate("f => [f.scrollLeft, f.scrollTop]")
    assert panned[0] == pytest.approx(scrolled[0] + 40, abs=2), (scrolled, panned)
    assert panned[1] == pytest.approx(scrolled[1] + 30, abs=2), (scrolled, panned)
    assert "nbops-mod-selected" not in (train.get_attribute("class") or "")
    assert graph_scale(page) == zoomed

    # A click still selects.
    train.click()
    expect_selected_cells(page, [11])
    assert "nbops-mod-selected" in (train.get_attribute("class") or "")

    # The buttons: minus zooms out about the middle, fit brings the whole graph back.
    page.get_by_test_id("nbops-zoom-out").click()
    assert wait_scale_change(page, zoomed) < zoomed
    page.get_by_test_id("nbops-fit").click()
    assert wait_fitted(page) == pytest.approx(fitted, abs=0.002)
    assert nodes_outside(page, frame_rect(page)) == []
    refitted = graph_scale(page)
    page.get_by_test_id("nbops-zoom-in").click()
    assert wait_scale_change(page, refitted) > fitted
    assert graph_frame(page).get_attribute("data-fitted") == "false"


def test_an_edit_keeps_the_zoom_the_user_chose(page: Any, lab: Lab) -> None:
    open_notebook(page, lab, "zoom.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, *CHURN_STEPS)
    fitted = wait_fitted(page)
    zoomed = fitted
    for _ in range(2):
        page.get_by_test_id("nbops-zoom-in").click()
        zoomed = wait_scale_change(page, zoomed)
    assert zoomed == pytest.approx(fitted * 1.25**2, abs=0.002)

    # A new step: the graph is laid out again, and the user's zoom (on a part of it) is kept.
    cell(page, 9).click()
    sidebar.get_by_test_id("nbops-step-name").fill("split")
    sidebar.get_by_test_id("nbops-role-step").click()
    wait_for_graph(page, "step:split")
    assert graph_frame(page).get_attribute("data-fitted") == "false"
    assert graph_scale(page) == zoomed

    page.get_by_test_id("nbops-fit").click()
    wait_fitted(page)
    assert nodes_outside(page, frame_rect(page)) == []


def test_a_long_pipeline_scrolls_at_the_minimum_scale_rather_than_shrinking(
    page: Any, lab: Lab
) -> None:
    open_notebook(page, lab, "large.ipynb")
    open_sidebar(page)
    wait_for_graph(page, "step:s0", "step:s38")
    scale = wait_fitted(page)
    min_scale = float(graph_frame(page).get_attribute("data-min-scale"))
    assert 0.5 <= min_scale <= 0.6
    assert scale == pytest.approx(min_scale, abs=0.001)
    scroll_height, client_height = graph_frame(page).evaluate(
        "f => [f.scrollHeight, f.clientHeight]"
    )
    assert scroll_height > 2 * client_height  # the frame scrolls
    # A step's name is drawn at 12px times the scale: no smaller than the minimum allows.
    label = node(page, "step:s0").locator(".nbops-Node-label")
    height = label.evaluate("t => t.getBoundingClientRect().height")
    natural = label.evaluate("t => t.getBBox().height")
    assert height == pytest.approx(natural * min_scale, rel=0.05)

    # Scrolled to the end, the last step is in sight, at the same scale.
    assert "step:s38" in nodes_outside(page, frame_rect(page))
    graph_frame(page).evaluate("f => { f.scrollTop = f.scrollHeight; }")
    page.wait_for_function(
        """() => { const f = document.querySelector('[data-testid="nbops-graph-frame"]');
            return f.scrollTop + f.clientHeight >= f.scrollHeight - 1; }"""
    )
    assert "step:s38" not in nodes_outside(page, frame_rect(page))
    assert graph_scale(page) == pytest.approx(min_scale, abs=0.001)
    assert graph_frame(page).get_attribute("data-fitted") == "true"


def test_command_palette_shows_the_sidebar(page: Any, lab: Lab) -> None:
    open_notebook(page, lab, "churn.ipynb")
    assert not page.locator(f"#{SIDEBAR_ID}").is_visible()
    page.locator(".lm-MenuBar-itemLabel", has_text="View").click()
    page.locator(".lm-Menu-itemLabel", has_text="Activate Command Palette").click()
    palette = page.locator("#command-palette input")
    palette.fill("nbops: Show sidebar")
    page.locator("#command-palette .lm-CommandPalette-item", has_text="nbops: Show sidebar").click()
    page.wait_for_selector(f"#{SIDEBAR_ID}", state="visible")
    wait_for_graph(page, "step:load")


def node(page: Any, node_id: str) -> Any:
    return page.locator(f'[data-testid="nbops-node"][data-node-id="{node_id}"]')


def expect_selected_cells(page: Any, indexes: list[int]) -> None:
    """Wait until exactly these cells (by position) carry the sidebar's highlight."""
    page.wait_for_function(
        """want => JSON.stringify([...document.querySelectorAll(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')]
            .flatMap((c, i) => c.classList.contains('nbops-mod-selected') ? [i] : []))
            === JSON.stringify(want)""",
        arg=indexes,
    )


def test_retagging_a_cell_changes_the_graph(page: Any, lab: Lab) -> None:
    open_notebook(page, lab, "retag.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, *CHURN_STEPS)
    cell(page, 9).click()  # the second cell of features: the train/test split
    assert "no role" in sidebar.get_by_test_id("nbops-active-cell").inner_text()
    sidebar.get_by_test_id("nbops-step-name").fill("split")
    sidebar.get_by_test_id("nbops-role-step").click()

    wait_for_graph(page, "step:split")
    edges = graph_edges(page)
    assert ("step:split", "step:train", "X_train, y_train") in edges
    assert ("step:features", "step:split", "customers") in edges
    assert "step:split" in sidebar.get_by_test_id("nbops-active-cell").inner_text()
    assert sidebar.get_by_test_id("nbops-summary").inner_text().startswith("6 steps")

    # The tag is a standard metadata.tags entry: saved, it is in the file.
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    saved = wait_for_file(lab.root / "retag.ipynb", lambda nb: "step:split" in tags_of(nb, 9))
    assert tags_of(saved, 9) == ["step:split"]

    # Metrics off, then the split back into features: the graph follows.
    cell(page, 17).click()
    sidebar.get_by_test_id("nbops-role-skip").click()
    node(page, "metrics").wait_for(state="detached")
    cell(page, 9).click()
    sidebar.get_by_test_id("nbops-role-none").click()
    node(page, "step:split").wait_for(state="detached")
    assert ("step:features", "step:train", "X_train, y_train") in graph_edges(page)


def tags_of(notebook: dict[str, Any], index: int) -> list[str]:
    return list(notebook["cells"][index].get("metadata", {}).get("tags", []))


def wait_for_file(path: Path, ready: Any, timeout: float = 15) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        notebook = json.loads(path.read_text())
        if ready(notebook) or time.monotonic() > deadline:
            return notebook
        time.sleep(0.1)


def notebook_scroll(page: Any) -> float:
    return page.eval_on_selector(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer", "e => e.scrollTop"
    )


def test_clicking_a_node_selects_and_scrolls_to_its_cells(page: Any, lab: Lab) -> None:
    open_notebook(page, lab, "churn.ipynb")
    open_sidebar(page)
    wait_for_graph(page, *CHURN_STEPS)
    assert notebook_scroll(page) == 0
    node(page, "step:report").click()
    expect_selected_cells(page, [19])
    page.wait_for_function(
        """() => {
            const outer = document.querySelector(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
            const cell = outer?.querySelectorAll('.jp-Notebook .jp-Cell')[19];
            if (!cell) return false;
            const a = outer.getBoundingClientRect(), b = cell.getBoundingClientRect();
            return outer.scrollTop > 0 && b.top >= a.top - 1 && b.top < a.bottom;
        }"""
    )
    assert "jp-mod-active" in (cell(page, 19).get_attribute("class") or "")
    assert "nbops-mod-selected" in (node(page, "step:report").get_attribute("class") or "")

    node(page, "step:features").click()  # a step of two cells: both are highlighted
    expect_selected_cells(page, [8, 9])


def test_diagnostics_are_listed_and_jump_to_their_cell(page: Any, lab: Lab) -> None:
    open_notebook(page, lab, "broken.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, "step:evaluate")
    diagnostic = sidebar.get_by_test_id("nbops-diagnostic").filter(has_text="X_tset")
    assert "Did you mean 'X_test'?" in diagnostic.inner_text()
    assert "cell 14" in diagnostic.inner_text()
    assert "nbops-mod-error" in (node(page, "step:evaluate").get_attribute("class") or "")
    diagnostic.click()
    page.wait_for_function(
        """() => !!document.querySelectorAll(
            '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')[14]
            ?.classList.contains('jp-mod-active')"""
    )
    assert notebook_scroll(page) > 0
    assert sidebar.get_by_test_id("nbops-deploy").is_disabled()  # errors first


RECORD_HEADLINES = """() => {
    window.nbopsHeadlines = [];
    const record = () => {
        const el = document.querySelector('[data-testid="nbops-deploy-status"]');
        const seen = window.nbopsHeadlines;
        if (el && seen[seen.length - 1] !== el.textContent) seen.push(el.textContent);
    };
    new MutationObserver(record).observe(document.body,
        {subtree: true, childList: true, characterData: true});
}"""


def wait_healthy(page: Any, timeout: float = 240_000) -> None:
    page.wait_for_selector(
        '[data-testid="nbops-deploy-status"][data-phase="healthy"],'
        '[data-testid="nbops-deploy-status"][data-phase="failed"]',
        timeout=timeout,
    )
    status = page.get_by_test_id("nbops-deploy-status")
    assert status.get_attribute("data-phase") == "healthy", status.inner_text()


def predict(url: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps(EXAMPLE_CUSTOMER).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def test_deploy_from_the_sidebar_then_the_cli_then_roll_back(
    page: Any, lab: Lab, artifacts: Path
) -> None:
    open_notebook(page, lab, "churn.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, *CHURN_STEPS)
    page.evaluate(RECORD_HEADLINES)
    lab.deployed.add("churn")
    sidebar.get_by_test_id("nbops-deploy").click()
    wait_healthy(page)

    headlines = page.evaluate("window.nbopsHeadlines")
    live = [h for h in headlines if h.startswith(("running step", "building", "starting"))]
    assert live, f"no stage was shown live: {headlines}"
    assert headlines[-1] == "healthy: churn v1"
    stages = sidebar.locator(".nbops-Stage").evaluate_all("s => s.map(e => e.dataset.stage)")
    assert stages[0] == "building" and stages[-1] == "healthy", stages

    url = sidebar.get_by_test_id("nbops-service-url").inner_text()
    assert url.startswith("http://127.0.0.1:")
    assert sidebar.get_by_test_id("nbops-service-docs").get_attribute("href") == f"{url}/docs"
    assert sidebar.get_by_test_id("nbops-service-version").inner_text() == "v1"
    assert "test_accuracy" in sidebar.get_by_test_id("nbops-metrics").inner_text()
    answer = predict(url)
    assert 0 <= answer["result"]["churn_probability"] <= 1
    widen_sidebar(page)
    for section in ("Cell role", "Lineage"):  # folded, so the Deploy section has the room
        sidebar.locator(".jp-AccordionPanel-title", has_text=section).click()
    page.wait_for_timeout(300)
    sidebar.screenshot(path=str(artifacts / "sidebar-deployed-light.png"))
    switch_theme(page, "JupyterLab Dark")
    try:
        sidebar.screenshot(path=str(artifacts / "sidebar-deployed-dark.png"))
    finally:
        switch_theme(page, "JupyterLab Light")

    # A deploy from the command line shows up in the sidebar too.
    cli = lab.nbops("deploy", "churn.ipynb")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    page.wait_for_function(
        """() => document.querySelector('[data-testid="nbops-service-version"]')
            ?.textContent === 'v2'""",
        timeout=20_000,
    )
    history = sidebar.get_by_test_id("nbops-history")
    assert history.locator("tr[data-version]").count() == 2

    # Roll back to v1 from the sidebar: the same URL serves v1 again.
    history.locator('tr[data-version="1"]').get_by_test_id("nbops-rollback").click()
    wait_healthy(page)
    assert sidebar.get_by_test_id("nbops-deploy-status").inner_text() == "healthy: churn v1"
    page.wait_for_function(
        """() => document.querySelector('[data-testid="nbops-service-version"]')
            ?.textContent === 'v1'""",
        timeout=20_000,
    )
    assert predict(url) == answer
    sidebar.screenshot(path=str(artifacts / "sidebar-rolled-back-light.png"))


TRACK_LATENCY = """() => {
    window.nbopsLastKey = null;
    window.nbopsShownAt = null;
    document.addEventListener('keydown', () => { window.nbopsLastKey = performance.now(); }, true);
    const lineage = document.querySelector('[data-testid="nbops-lineage"]');
    new MutationObserver(() => requestAnimationFrame(() => {
        window.nbopsShownAt = performance.now();
    })).observe(lineage, {attributes: true, attributeFilter: ['data-revision']});
}"""


def edit_and_time(page: Any, sidebar: Any, editor: Any, text: str) -> tuple[float, Any]:
    """Type `text` at the end of a cell as a person types, then time from the last key to the
    frame after the new lineage reached the sidebar."""
    lineage = sidebar.get_by_test_id("nbops-lineage")
    revision = lineage.get_attribute("data-revision")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text, delay=25)
    page.wait_for_function(
        """rev => document.querySelector('[data-testid="nbops-lineage"]')
            ?.dataset.revision !== rev && window.nbopsShownAt > window.nbopsLastKey""",
        arg=revision,
    )
    elapsed: float = page.evaluate("window.nbopsShownAt - window.nbopsLastKey")
    return round(elapsed, 1), json.loads(lineage.get_attribute("data-timings"))


def test_lineage_of_a_200_cell_notebook_follows_edits_quickly(
    page: Any, lab: Lab, artifacts: Path
) -> None:
    open_notebook(page, lab, "large.ipynb")
    sidebar = open_sidebar(page)
    wait_for_graph(page, "step:s0", "step:s38")
    assert sidebar.get_by_test_id("nbops-summary").inner_text().startswith("39 steps")
    page.evaluate(TRACK_LATENCY)
    # Edits that leave the drawing as it is: a name nothing reads, in a cell of step s0.
    same = [edit_and_time(page, sidebar, cell(page, 6), f"\nextra_{k} = {k}") for k in range(6)]
    # Edits that change it: step s20 (cells 104-106) reading an earlier step's output adds an
    # edge each time, so the graph is laid out again.
    changed = [edit_and_time(page, sidebar, cell(page, 105), f"\n_ = out_{k}") for k in range(6)]
    wait_for_graph(page, "step:s0")
    assert ("step:s5", "step:s20", "out_5") in graph_edges(page)

    def summary(samples: list[tuple[float, Any]]) -> dict[str, Any]:
        steady = [ms for ms, _ in samples[1:]]  # the first pays for warming up
        return {
            "edit_pause_to_graph_ms": [ms for ms, _ in samples],
            "median_ms": statistics.median(steady),
            "max_ms": max(steady),
            "timings": [timing for _, timing in samples],
        }

    result = {
        "cells": 200,
        "steps": 39,
        "debounce_ms": 200,
        "drawing_unchanged": summary(same),
        "drawing_changed": summary(changed),
    }
    (artifacts / "lineage-latency.json").write_text(json.dumps(result, indent=2))
    widen_sidebar(page)
    sidebar.screenshot(path=str(artifacts / "sidebar-200-cells-light.png"))
    print(f"\nlineage latency, 200 cells: {json.dumps(result)}")
    # The aim is 300 ms; a CI machine under load gets slack, a regression does not.
    assert result["drawing_unchanged"]["median_ms"] < 600, result
    assert result["drawing_changed"]["median_ms"] < 800, result
