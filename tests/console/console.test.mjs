// The web console in a real browser: starts `quiver serve`, loads part of the demo corpus with `quiver demo
// --url … --map`, then drives Debian's headless Chromium through the console (playwright-core, no browser
// download): the collection list, a text search with its plan, the map (hover and "more like this"), and the
// live metrics. QUIVER_BIN: the binary (default: the cargo debug build). QUIVER_SCREENSHOTS=DIR: also write the
// screenshots the docs use into DIR.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

const target = process.env.CARGO_TARGET_DIR || join(process.cwd(), '..', '..', 'target');
const BIN = process.env.QUIVER_BIN || join(target, 'debug', 'quiver');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.QUIVER_SCREENSHOTS;
const ITEMS = 400;

let dir, server, url, browser, page;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

async function waitReady(u) {
  for (let i = 0; i < 600; i++) {
    try { if ((await fetch(`${u}/readyz`)).ok) return; } catch (_) { /* not up yet */ }
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error('quiver serve did not become ready');
}

before(async () => {
  assert.ok(existsSync(BIN), `no quiver binary at ${BIN} (cargo build -p quiver-cli, or set QUIVER_BIN)`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  dir = mkdtempSync(join(tmpdir(), 'quiver-console-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(BIN, ['serve', '--bind', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitReady(url);
  // The demo through the server: the server embeds the texts; --map also checks the PNG writer end to end.
  execFileSync(BIN, ['demo', '--url', url, '--limit', String(ITEMS), '--map', join(dir, 'map.png'), '-q', 'a whale'], { stdio: 'inherit' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', e => { throw e; });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('quiver demo --map wrote a PNG', () => {
  assert.ok(statSync(join(dir, 'map.png')).size > 10_000);
});

test('the collection list shows the demo collection', async () => {
  await page.goto(`${url}/console`);
  const link = page.locator('#collections a.collection-link', { hasText: 'demo' });
  await link.waitFor();
  const row = page.locator('#collections tr', { has: page.locator('a.collection-link', { hasText: 'demo' }) });
  assert.match(await row.innerText(), new RegExp(`${ITEMS}\\s`));
  assert.match(await row.innerText(), /all-MiniLM-L6-v2/);
  await link.click();
  await page.locator('#overview-cards').waitFor();
  assert.match(await page.locator('#overview-cards').innerText(), new RegExp(`points\\s+${ITEMS}`));
});

test('a text search answers ranked hits and its plan', async () => {
  await page.goto(`${url}/console#/c/demo/search`);
  await page.locator('#search-input').fill('an animal that lives in the ocean');
  await page.locator('#search-run').click();
  await page.locator('#search-results tr.hit').first().waitFor();
  const hits = await page.locator('#search-results tr.hit').allInnerTexts();
  assert.equal(hits.length, 10);
  const animals = hits.filter(t => t.includes('"topic":"animal"')).length;
  assert.ok(animals >= 5, `only ${animals} of 10 hits are animals:\n${hits.join('\n')}`);
  const plan = JSON.parse(await page.locator('#search-explain-out').innerText());
  assert.ok(Array.isArray(plan.segments) && plan.segments.length >= 1, JSON.stringify(plan));
  // A filter from the builder narrows the search.
  await page.locator('.add-condition').click();
  await page.locator('.filter-key').fill('topic');
  await page.locator('.filter-value').fill('plant');
  await page.locator('#search-run').click();
  await page.waitForFunction(() => [...document.querySelectorAll('#search-results tr.hit')].length > 0
    && [...document.querySelectorAll('#search-results tr.hit')].every(r => r.innerText.includes('"topic":"plant"')));
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-search.png'), fullPage: false });
});

test('the map draws every point, names them on hover and finds neighbours on click', async () => {
  await page.goto(`${url}/console#/c/demo/map`);
  await page.waitForFunction(n => document.body.dataset.mapPoints === String(n), ITEMS, { timeout: 60_000 });
  assert.match(await page.locator('#map-status').innerText(), new RegExp(`${ITEMS} of ${ITEMS} points · UMAP`));
  const legend = await page.locator('#map-legend span').allInnerTexts();
  assert.equal(legend.length, 8, legend.join(' | '));
  // The canvas holds the points (coloured pixels), not a blank.
  const inked = await page.evaluate(() => {
    const c = document.getElementById('map');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(inked > 1500, `only ${inked} pixels drawn`);
  // The map is deterministic: the API gives the same coordinates the page drew, so a point can be aimed at.
  const m = (await (await fetch(`${url}/collections/demo/map?sample=2000&method=umap&color_by=topic`)).json()).result;
  const p = m.points[17];
  const box = await page.locator('#map').boundingBox();
  const [W, H, PAD] = [760, 560, 14];
  const x = box.x + (PAD + p.x * (W - 2 * PAD)) * (box.width / W);
  const y = box.y + (PAD + (1 - p.y) * (H - 2 * PAD)) * (box.height / H);
  await page.mouse.move(x, y);
  const tip = page.locator('#map-tip');
  await tip.waitFor({ state: 'visible' });
  const shown = await tip.innerText();
  // The nearest point under the cursor is named (another point may sit on top of this one).
  assert.match(shown, /^#\d+/);
  await page.mouse.click(x, y);
  await page.waitForFunction(() => document.body.dataset.mapHighlighted === '10');
  assert.equal(await page.locator('#map-hits tr.map-hit').count(), 10);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'console-map.png'), fullPage: false });
});

test('the live panel reports the request rate from /metrics', async () => {
  // Traffic from outside the page, while the panel polls: it counts every client's requests (but its own scrapes).
  let going = true;
  const traffic = (async () => {
    while (going) {
      await fetch(`${url}/collections/demo/points/count`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      await new Promise(r => setTimeout(r, 20));
    }
  })();
  try {
    await page.waitForFunction(() => Number(document.getElementById('live-rate').textContent) > 1
      && document.getElementById('live-routes').textContent.includes('points/count'), null, { timeout: 20_000 });
    assert.match(await page.locator('#live-routes').innerText(), /\/s \/collections\/\{collection_name\}\/points\/count/);
    assert.match(await page.locator('#live-latency').innerText(), /^\d+\.\d ms$/);
  } finally {
    going = false;
    await traffic;
  }
});
