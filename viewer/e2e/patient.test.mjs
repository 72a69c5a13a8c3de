// The child protection information page: find patient, alert and no
// alert, plans, directory advice, previously viewed by, copy summary.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  env, app, launch, newPage, signIn, findPatient, spaced, text, telNumbers, viewedByRows,
  resetClock, setClock, assertNoNHSInURLs,
} from './helpers.mjs';

const fx = env.fixtures;
const allNumbers = Object.values(fx);
// London times relative to the start (GMT in March): the start is a
// Tuesday at 10:00; 22:00 the same day and a Saturday are out of hours.
const at = (days, hour) => new Date(Date.UTC(env.start.getUTCFullYear(), env.start.getUTCMonth(),
  env.start.getUTCDate() + days, hour));

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });
beforeEach(resetClock);

/** A signed-in ed-clinician on the page of nhs, typed with spaces. */
async function viewAs(persona, nhs, options) {
  const page = await newPage(browser, options);
  await signIn(page, persona);
  await findPatient(page, spaced(nhs));
  return page;
}

test('find patient with spaces: two active plans, the orange alert and each plan\'s facts', async () => {
  const page = await viewAs('ed-clinician', fx.twoPlans);
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  assert.equal(await page.locator('.alert-present').count() > 0, true, 'an element with class alert-present');
  const body = await text(page);
  for (const want of [
    'Active child protection information', 'This child has 2 active plans',
    'Child Protection Plan', 'Child Looked After', 'Start date', 'End date',
    '05-Jan-2026', '05-Jan-2027', '02-Feb-2026', '02-Feb-2027', 'Responsible local authority',
    'London Borough of Hackney and City of London (ZLA01)', 'London Borough of Newham (ZLA02)',
    'Emergency duty number', 'Office hours number',
  ]) assert.ok(body.includes(want), `the page shows "${want}"`);
  const tel = await telNumbers(page);
  for (const n of ['02079460101', '02079460102', '02079460201', '02079460202']) {
    assert.ok(tel.includes(n), `a tel: link to ${n} (got ${tel})`);
  }
  assert.equal(await page.getByText('Ended plans still shown').count(), 0, 'no ended plan for this child');
  assertNoNHSInURLs(page, allNumbers);
  await page.context().close();
});

test('no plan: "No child protection information" and no alert', async () => {
  const page = await viewAs('ed-clinician', fx.noPlan);
  await page.getByRole('heading', { name: 'No child protection information' }).waitFor();
  assert.equal(await page.locator('.alert-present').count(), 0, 'no orange alert');
  assert.equal(await page.getByRole('heading', { name: 'Child protection alert present' }).count(), 0);
  assertNoNHSInURLs(page, allNumbers);
  await page.context().close();
});

test('an ended plan in its display window is shown apart from the active ones', async () => {
  const page = await viewAs('ed-clinician', fx.ended);
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  await page.getByText('Ended plans still shown').first().waitFor();
  const body = await text(page);
  assert.ok(body.includes('10-Jan-2026'), 'the end date, DD-Mon-YYYY');
  assert.ok(body.includes('Bedford Borough Council (ZLA04)'));
  await page.context().close();
});

test('an unborn child protection plan on the mother\'s record', async () => {
  const page = await viewAs('ed-clinician', fx.mother);
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  const body = await text(page);
  assert.ok(body.includes('Unborn Child Protection Plan'));
  assert.ok(body.includes('01-Aug-2026'), 'the expected date of delivery as end date');
  await page.context().close();
});

test('an invalid NHS number is refused: "not a valid NHS number"', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ed-clinician');
  await page.getByLabel('NHS number').fill(spaced(fx.invalid));
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/app/patient'),
    page.getByRole('button', { name: 'Find patient' }).click(),
  ]);
  assert.ok([400, 422].includes(res.status()), `status ${res.status()}, want 400 or 422`);
  assert.match(await text(page), /not a valid NHS number/);
  assert.equal(await page.locator('.alert-present').count(), 0);
  assertNoNHSInURLs(page, allNumbers);
  await page.context().close();
});

test('previously viewed by grows by exactly one row per view', async () => {
  const page = await viewAs('ed-clinician', fx.viewed);
  await page.getByRole('heading', { name: /Previously Viewed By/ }).waitFor();
  const first = await viewedByRows(page).count();
  assert.ok(first >= 1, 'the table lists at least this view');
  const row = await viewedByRows(page).first().innerText();
  assert.ok(row.includes('Dr Ada Testwell'), `the newest row names the viewer: ${row}`);
  await page.goto(app());
  await findPatient(page, spaced(fx.viewed));
  await page.getByRole('heading', { name: /Previously Viewed By/ }).waitFor();
  assert.equal(await viewedByRows(page).count(), first + 1, 'one more row after one more view');
  assertNoNHSInURLs(page, allNumbers);
  await page.context().close();
});

/** The directory advice of the twoPlans child's ZLA01 plan at a time. */
async function adviceAt(when) {
  await setClock(when);
  const page = await viewAs('ed-clinician', fx.twoPlans);
  const body = await text(page);
  await page.context().close();
  return body;
}

test('directory advice in office hours: call the office number, with the referral route', async () => {
  const body = await adviceAt(at(0, 10));
  assert.ok(body.includes('Call now: 020 7946 0102'), 'ZLA01\'s office number on a Tuesday at 10:00');
  assert.ok(body.includes('How to refer'), 'the referral route');
});

test('directory advice out of hours: call the emergency duty number', async () => {
  let body = await adviceAt(at(0, 22));
  assert.ok(body.includes('Call now: 020 7946 0101'), 'ZLA01\'s emergency duty number at 22:00');
  body = await adviceAt(at(4, 11));
  assert.ok(body.includes('Call now: 020 7946 0101'), 'ZLA01\'s emergency duty number on a Saturday');
});

test('a plan of an LA outside the directory: out of area, use the numbers on the plan', async () => {
  const page = await viewAs('ed-clinician', fx.outOfArea);
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  const body = await text(page);
  assert.match(body, /out of area/i);
  assert.ok(body.includes('Luton Borough Council (ZLA06)'));
  assert.ok(!body.includes('Call now:'), 'no directory advice for an LA the directory does not hold');
  const tel = await telNumbers(page);
  assert.ok(tel.includes('02079460601'), `the plan's emergency duty number as a tel: link (got ${tel})`);
  assert.ok(tel.includes('02079460602'), `the plan's office hours number as a tel: link (got ${tel})`);
  await page.context().close();
});

test('copy summary for the record', async () => {
  const page = await viewAs('ed-clinician', fx.twoPlans, { permissions: ['clipboard-read', 'clipboard-write'] });
  const summary = await page.locator('#summary').inputValue();
  for (const want of ['10-Mar-2026', 'Dr Ada Testwell', 'Child protection alert present', 'Child Protection Plan',
    'Child Looked After', '(ZLA01)', '(ZLA02)', '020 7946 0101', '020 7946 0201', 'Call now: 020 7946 0102']) {
    assert.ok(summary.includes(want), `the summary holds "${want}": ${summary}`);
  }
  await page.getByRole('button', { name: 'Copy summary for the record' }).click();
  await page.getByText('Summary copied').waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, summary, 'the clipboard holds the summary');
  await page.context().close();
});

test('a role with both unscheduled and scheduled care chooses the care setting first', async () => {
  const page = await newPage(browser);
  await signIn(page, 'paediatrician');
  const group = page.getByRole('group', { name: 'Care setting' });
  await group.waitFor();
  const unscheduled = page.getByLabel('Unscheduled care (notifies the local authority)');
  const scheduled = page.getByLabel('Scheduled care', { exact: true });
  assert.equal(await unscheduled.getAttribute('type'), 'radio');
  assert.equal(await scheduled.getAttribute('type'), 'radio');
  const required = await group.locator('input[type=radio]').evaluateAll((rs) => rs.some((r) => r.required));
  assert.ok(required, 'the choice is required');
  await findPatient(page, spaced(fx.twoPlans), 'Scheduled care');
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  await page.context().close();
});

test('readable at 375 px: no horizontal scroll on the patient page', async () => {
  const page = await viewAs('ed-clinician', fx.twoPlans, { viewport: { width: 375, height: 800 } });
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `scrollWidth ${width} > 375`);
  await page.context().close();
});
