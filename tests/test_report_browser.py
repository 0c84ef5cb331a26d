"""make report in a real browser: Debian's Chromium (headless, through Playwright; scripts/tools/chromium.sh installs
it where it is missing, and the test fails, never skips, if it still cannot start) opens the page of a miniature run
from a file:// URL with every other request refused: no console error, every internal link lands on an element,
the MedQA measured cell opens exactly the questions of lm-eval's samples file, and the filters hide the right rows."""

import json

import pytest
from test_report import STAMP, mini_run

from scripts.lib.openrlhf_log import STEP
from scripts.lib.report import browser, collect, render

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("report")
    run = mini_run(root)
    html = render.write(collect.collect(run, STEP, diff_root=root / "runs" / "diff-eval"), root / "report.html")
    problems, requests = [], []
    with sync_playwright() as p:
        chromium = browser.launch(p)
        pg = chromium.new_page(viewport={"width": 1280, "height": 900})
        pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        pg.on("request", lambda r: requests.append(r.url))
        browser.offline(pg)
        pg.goto(html.as_uri())
        yield pg, run, problems, requests
        chromium.close()


def visible_rows(pg, table: str) -> list:
    return pg.eval_on_selector_all(
        f"#{table} > tbody > tr",
        "rows => rows.filter(r => r.checkVisibility()).map(r => [r.dataset.docId, r.dataset.correct])",
    )


def test_the_page_loads_offline_with_no_error(page):
    pg, _, problems, requests = page
    assert pg.title().startswith("Aloe run report")
    assert not problems
    assert requests and all(u.startswith("file://") for u in requests), requests


def test_every_internal_link_lands_on_an_element(page):
    pg = page[0]
    hrefs = pg.eval_on_selector_all('a[href^="#"]', "links => links.map(a => a.getAttribute('href'))")
    assert len(hrefs) > 20
    missing = pg.evaluate("hrefs => hrefs.filter(h => !document.getElementById(h.slice(1)))", hrefs)
    assert missing == []


def test_the_medqa_measured_cell_opens_its_samples_as_log_samples_wrote_them(page):
    pg, run, _, _ = page
    lm = next((run / "eval-mcqa" / "lm_eval").iterdir())
    lines = (lm / f"samples_aloe_local_medqa_4options_{STAMP}.jsonl").read_text().splitlines()
    logged = [[str(s["doc_id"]), "1" if s["acc"] == 1.0 else "0"] for s in map(json.loads, lines)]
    table = "samples-medqa_4options-rows"
    assert visible_rows(pg, table) == []  # closed until asked for
    pg.click('#table-verify tr[data-task="medqa_4options"] a.drill')
    assert pg.is_visible("#sample-medqa_4options-2")
    assert visible_rows(pg, table) == logged
    assert 'alert("x")' in pg.inner_text("#sample-medqa_4options-2")  # the question's markup shows as text
    assert visible_rows(pg, "samples-medmcqa-rows") == []  # only the task clicked opens


def test_the_correct_and_incorrect_filters_hide_the_other_rows(page):
    pg = page[0]
    pg.click('#table-verify tr[data-task="medqa_4options"] a.drill')
    table = "samples-medqa_4options-rows"
    box = '.filters[data-for="samples-medqa_4options-rows"]'
    pg.click(f'{box} button[data-filter="incorrect"]')
    assert visible_rows(pg, table) == [["1", "0"], ["3", "0"], ["4", "0"]]
    pg.click(f'{box} button[data-filter="correct"]')
    assert visible_rows(pg, table) == [["0", "1"], ["2", "1"], ["5", "1"]]
    assert pg.get_attribute(f'{box} button[data-filter="correct"]', "aria-pressed") == "true"
    pg.click(f'{box} button[data-filter="all"]')
    assert len(visible_rows(pg, table)) == 6


def test_a_stage_link_opens_its_provenance(page):
    pg = page[0]
    assert not pg.is_visible("#stage-sft table.values")
    pg.click('#toc a[href="#stage-sft"]')
    assert pg.is_visible("#stage-sft table.values")
    assert "2 x 2 = 4" in pg.inner_text("#stage-sft")  # world size x micro batch x accumulation


def test_a_table_10_cell_opens_the_questions_of_its_field(page):
    pg, run, _, _ = page
    per = [json.loads(x) for x in (run / "eval-fields" / "per_sample.jsonl").read_text().splitlines()]
    table = "judged-eval-fields-rows"

    def shown():
        return pg.eval_on_selector_all(
            f"#{table} > tbody > tr",
            "rows => rows.filter(r => r.checkVisibility()).map(r => [r.dataset.field, r.dataset.correct])",
        )

    pg.click('#table-verify-fields tr[data-task="field_cardiology"] a.drill')
    cardio = [["Cardiology", "1" if x["acc"] == 1 else "0"] for x in per if x["field"] == "Cardiology"]
    assert shown() == cardio and len(cardio) < len(per)
    assert pg.input_value('.filters[data-for="judged-eval-fields-rows"] select[data-key="field"]') == "Cardiology"
    pg.click('.filters[data-for="judged-eval-fields-rows"] button[data-filter="incorrect"]')  # both filters apply
    assert shown() == [x for x in cardio if x[1] == "0"]
    pg.select_option('.filters[data-for="judged-eval-fields-rows"] select[data-key="field"]', "")
    assert len(shown()) == sum(x["acc"] != 1 for x in per)
    pg.click('.filters[data-for="judged-eval-fields-rows"] button[data-filter="all"]')
    assert len(shown()) == len(per)


def test_a_diff_eval_task_opens_its_flipped_questions(page):
    pg = page[0]
    assert not pg.is_visible("#diff-0-medqa_4options-10")
    pg.click('#diff-0 a[href="#diff-0-medqa_4options"]')
    assert pg.is_visible("#diff-0-medqa_4options-10")
    ids = pg.eval_on_selector_all("#diff-0-medqa_4options-rows > tbody > tr", "rows => rows.map(r => r.id)")
    assert ids == [f"diff-0-medqa_4options-{i}" for i in (0, 1, 10, 11, 12, 13, 14)]
