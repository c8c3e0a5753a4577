"""The shared protocol vectors (``schemas/vectors/*.json``) through the app's own modules,
as served at ``/app/js/``, in Chromium: the same files ``tests/test_vectors.py`` runs
through the server's engine and the Python SDK, so both clients agree byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Page

from .conftest import App

pytestmark = pytest.mark.asyncio(loop_scope="module")

VECTORS = Path(__file__).parent.parent.parent / "schemas" / "vectors"


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


async def run(page: Page, script: str, vectors: Any) -> list[str]:
    """Evaluate `script` (the body of an async function of `v`, the modules and the
    schema) in the page; it answers a list of failures."""
    body = f"""async (v) => {{
        const hlc = await import("/app/js/hlc.js");
        const values = await import("/app/js/values.js");
        const merge = await import("/app/js/merge.js");
        const schema = await (await fetch("/app/schema.json")).json();
        const failures = [];
        const same = (name, got, want) => {{
            if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${{name}}: got ${{JSON.stringify(got)}}, want ${{JSON.stringify(want)}}`);
        }};
        {script}
        return failures;
    }}"""
    return list(await page.evaluate(body, vectors))


@pytest_asyncio.fixture(loop_scope="module")
async def page(app: App) -> Page:
    await app.open()
    return app.page


async def test_the_app_orders_stamps_and_runs_its_hlc_as_the_vectors_say(page: Page) -> None:
    failures = await run(page, """
        same("order", [...v.order].sort(), v.order);
        for (const c of v.hlc) {
            let wall = 0;
            const clock = new hlc.HLC(c.node, c.state, () => wall);
            for (const step of c.steps) {
                if (step.observe) clock.observe(step.observe);
                else { wall = step.wall; same(c.name, clock.now(), step.now); }
            }
            same(c.name + " (state)", clock.state, c.final);
        }
        for (const [text, folded] of v.fold) same("fold " + text, values.fold(text), folded);
    """, load("stamps"))
    assert failures == []


async def test_the_app_merges_each_pair_of_edits_as_the_vectors_say_in_either_order(page: Page) -> None:
    failures = await run(page, """
        for (const c of v.cases) {
            const [a, b] = c.edits;
            for (const order of [[a, b], [b, a]]) {
                const state = merge.emptyState();
                for (const change of (c.start ? [c.start] : []).concat(order)) {
                    merge.mergeChange(state, change, schema["x-merge-policies"][change.collection], schema["x-ranks"][change.collection]);
                }
                same(c.name + " fields", Object.fromEntries(Object.keys(c.expect.fields).map((k) => [k, state.fields[k]])), c.expect.fields);
                same(c.name + " stamps", Object.fromEntries(Object.keys(c.expect.stamps).map((k) => [k, state.stamps[k]])), c.expect.stamps);
                same(c.name + " deleted", merge.isDeleted(state), c.expect.deleted);
            }
        }
    """, load("merges"))
    assert failures == []


async def test_the_app_stamps_coalesces_and_replays_pending_edits_as_the_vectors_say(page: Page) -> None:
    failures = await run(page, """
        for (const c of v.cases) {
            let wall = 0;
            const clock = new hlc.HLC(c.node, [0, 0], () => wall);
            let pulled = c.pulled;
            for (const ts of Object.values(pulled ? pulled.stamps : {})) clock.observe(ts);
            const pending = values.newPending();
            for (const step of c.steps) {
                if (step.pull) { pulled = step.pull; for (const ts of Object.values(pulled.stamps)) clock.observe(ts); continue; }
                wall = step.wall;
                const ts = clock.now();
                const stamps = pulled ? pulled.stamps : {};
                values.pendingAdd(pending, { values: step.values || {}, sets: step.sets || {} }, ts, stamps);
                if (step.delete) values.pendingDeleteAt(pending, ts, stamps);
            }
            const sortKeys = (o) => (o && typeof o === "object" && !Array.isArray(o) ? Object.fromEntries(Object.keys(o).sort().map((k) => [k, sortKeys(o[k])])) : o);
            same(c.name + " change", sortKeys(values.outChange(c.collection, c.id, pending)), sortKeys(c.expect.change));
            const doc = pulled ? structuredClone(pulled.fields) : {};
            const deleted = values.applyPending(doc, [pending], pulled ? pulled.deleted : false);
            same(c.name + " view", sortKeys(doc), sortKeys(c.expect.view));
            same(c.name + " deleted", deleted, c.expect.deleted);
        }
    """, load("replay"))
    assert failures == []
