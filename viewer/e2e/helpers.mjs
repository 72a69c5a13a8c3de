// Shared helpers of the viewer's browser tests. cmd/cpisd/browser_e2e_test.go
// starts the server and runs these files with node --test; it passes:
//   CPIS_URL              the server's base URL (the viewer is at /app/)
//   CPIS_CLOCK_URL        POST {"at": RFC3339} moves the server's clock
//   CPIS_CHROMIUM         Debian's Chromium (no browser is ever downloaded)
//   CPIS_FIXTURES         JSON: the NHS numbers of the seeded children
//   CPIS_START            the clock's start (a Tuesday, 10:00 London)
//   CPIS_SCREENSHOTS_DIR  optional: where to write the README's screenshots
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

/** Environment of the run; a missing variable is a setup error. */
export const env = {
  url: need('CPIS_URL'),
  clockURL: need('CPIS_CLOCK_URL'),
  chromium: process.env.CPIS_CHROMIUM || '/usr/bin/chromium',
  fixtures: JSON.parse(need('CPIS_FIXTURES')),
  start: new Date(need('CPIS_START')),
  screenshots: process.env.CPIS_SCREENSHOTS_DIR || '',
};

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through go test ./cmd/cpisd -run Browser`);
  return v;
}

/** The app's URL for a path under /app/. */
export const app = (path = '') => `${env.url}/app/${path}`;

// Chromium's flags for this machine: headless, as root, and without any
// background connection (the network is closed; Chromium would retry).
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Starts Debian's Chromium; one per test file, a fresh context per test. */
export function launch() {
  return chromium.launch({ executablePath: env.chromium, args: chromiumArgs });
}

/**
 * A fresh context and page. Every request URL the page makes is kept in
 * page.seenURLs, so a test can check that no NHS number ever reached one.
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  context.setDefaultTimeout(15_000); // a missing element fails in seconds, not the default 30
  const page = await context.newPage();
  page.seenURLs = [];
  page.on('request', (r) => page.seenURLs.push(r.url()));
  page.on('framenavigated', (f) => page.seenURLs.push(f.url()));
  return page;
}

/** Moves the server's clock to at (a Date or an ISO string). */
export async function setClock(at) {
  const iso = at instanceof Date ? at.toISOString() : at;
  const res = await fetch(env.clockURL, { method: 'POST', body: JSON.stringify({ at: iso }) });
  assert.equal(res.status, 200, `clock control: ${await res.text()}`);
}

/** Moves the clock back to the start, a weekday inside office hours. */
export const resetClock = () => setClock(env.start);

/** The signed-out home page's "Sign in" (a link or a button). */
export function signInControl(page) {
  return page.getByRole('link', { name: 'Sign in', exact: true })
    .or(page.getByRole('button', { name: 'Sign in', exact: true })).first();
}

/**
 * Signs in through the standalone launch: the home page's "Sign in", then
 * the dev authorization server's persona button, back to the viewer.
 */
export async function signIn(page, persona) {
  await page.goto(app());
  await signInControl(page).click();
  await page.waitForURL(/\/dev\/authorize/);
  await personaButton(page, persona).click();
  await page.waitForURL((u) => u.pathname.startsWith('/app/') && !u.pathname.startsWith('/app/callback'));
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** The dev authorize page's button for a persona ("Sign in as <name>"). */
export function personaButton(page, persona) {
  const esc = persona.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return page.getByRole('button', { name: new RegExp(`(^|\\s)${esc}(\\s|$)`) });
}

/** Looks a patient up with the "Find patient" form; careSetting is a label. */
export async function findPatient(page, nhs, careSetting) {
  if (careSetting) await page.getByLabel(careSetting, { exact: true }).check();
  await page.getByLabel('NHS number').fill(nhs);
  await page.getByRole('button', { name: 'Find patient' }).click();
  await page.waitForLoadState('domcontentloaded');
}

/** "9991000100" as a person types it: "999 100 0100". */
export const spaced = (nhs) => `${nhs.slice(0, 3)} ${nhs.slice(3, 6)} ${nhs.slice(6)}`;

/** The body's visible text, whitespace collapsed. */
export async function text(page) {
  return (await page.locator('body').innerText()).replace(/\s+/g, ' ');
}

/** The numbers of the page's tel: links, as national digits ("02079460101"). */
export async function telNumbers(page) {
  const hrefs = await page.locator('a[href^="tel:"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  return hrefs.map((h) => h.replace(/^tel:/, '').replace(/[\s-]/g, '').replace(/^\+44/, '0'));
}

/** Rows (with cells) of the "Previously Viewed By" table. */
export function viewedByRows(page) {
  return page.locator('xpath=//*[self::h1 or self::h2 or self::h3][contains(normalize-space(.), "Previously Viewed By")]/following::table[1]//tr[td]');
}

const axeSource = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/**
 * Runs axe-core on the page and fails on any serious or critical
 * violation. The page's Content-Security-Policy forbids inline script, so
 * addScriptTag (an inline <script>) is refused; axe is evaluated through
 * the DevTools protocol instead, which CSP does not govern, leaving the
 * page's policy in force.
 */
export async function checkA11y(page, name) {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
  }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`), [],
    `axe on ${name}: serious or critical violations`);
}

/** Asserts the page needs no horizontal scrolling at 375 px wide. */
export async function checkNarrow(page, name) {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 375, height: 800 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewportSize(size);
  assert.ok(width <= 375, `${name} at 375 px: scrollWidth ${width}, it scrolls sideways`);
}

/** Full-page screenshots at 1280 and 375 px wide, when CPIS_SCREENSHOTS_DIR is set. */
export async function screenshot(page, name) {
  if (!env.screenshots) return;
  const size = page.viewportSize();
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(env.screenshots, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(size);
}

/** Asserts no URL the page requested or showed carries an NHS number. */
export function assertNoNHSInURLs(page, numbers) {
  for (const u of [...page.seenURLs, page.url()]) {
    const digits = decodeURIComponent(u).replace(/[\s+]/g, '');
    for (const n of numbers) assert.ok(!digits.includes(n), `an NHS number is in a URL: ${u}`);
  }
}

/**
 * Reports a discrepancy on nhs as ed-clinician and returns its note (a
 * unique one unless given); onReported, if given, sees the confirmation.
 */
export async function reportDiscrepancy(browser, nhs, reason, { note, onReported } = {}) {
  note ||= `Browser test report ${randomBytes(4).toString('hex')}`;
  const page = await newPage(browser);
  await signIn(page, 'ed-clinician');
  await findPatient(page, spaced(nhs));
  const form = page.locator('form').filter({ has: page.getByLabel('Missing alert', { exact: true }) });
  for (const r of ['Missing alert', 'Wrong step-down status', 'Other']) {
    assert.equal(await form.getByLabel(r, { exact: true }).getAttribute('type'), 'radio', `a "${r}" radio`);
  }
  const noteBox = form.getByLabel('Note (optional)');
  assert.equal(await noteBox.getAttribute('maxlength'), '500');
  assert.match(await form.innerText(), /clinical/i, 'a warning not to include clinical details');
  await form.getByLabel(reason, { exact: true }).check();
  await noteBox.fill(note);
  await form.locator('button[type=submit], button:not([type]), input[type=submit]').first().click();
  await page.getByText('Discrepancy reported').first().waitFor();
  if (onReported) await onReported(page);
  await page.context().close();
  return note;
}
