// SMART launches, sign-out and idle sign-out, through the viewer in Chromium.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  env, app, launch, newPage, signIn, personaButton, signInControl, resetClock, setClock, text, assertNoNHSInURLs, checkA11y, checkNarrow,
  findPatient, spaced,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });
beforeEach(resetClock);

test('standalone launch: Sign in, pick ed-clinician on the dev authorize page, back signed in', async () => {
  const page = await newPage(browser);
  await page.goto(app());
  await page.getByRole('heading', { name: 'Child protection information' }).waitFor();
  await signInControl(page).click();
  await page.waitForURL(/\/dev\/authorize/);
  await page.getByRole('heading', { name: 'Choose a development persona' }).waitFor();
  const u = new URL(page.url());
  assert.equal(u.searchParams.get('code_challenge_method'), 'S256', 'the viewer uses PKCE S256');
  assert.ok(u.searchParams.get('code_challenge'), 'the viewer sends a code challenge');
  await personaButton(page, 'ed-clinician').click();
  await page.waitForURL((url) => url.pathname.startsWith('/app/') && url.pathname !== '/app/callback');
  await page.getByLabel('NHS number').waitFor();
  await page.getByRole('button', { name: 'Find patient' }).waitFor();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
  assert.ok(!new URL(page.url()).searchParams.has('code'), 'the code does not stay in the address bar');
  assert.equal(await page.getByRole('group', { name: 'Care setting' }).count(), 0,
    'an unscheduled-care role has no care-setting choice');
  await page.context().close();
});

test('EHR launch with a patient lands straight on the child\'s page', async () => {
  const page = await newPage(browser);
  const nhs = env.fixtures.twoPlans;
  const launchURL = `${env.url}/dev/launch?persona=ed-clinician&patient=${nhs}&app=${encodeURIComponent(app('launch'))}`;
  await page.goto(launchURL);
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  assert.ok(new URL(page.url()).pathname.startsWith('/app/'), `landed on ${page.url()}`);
  // Past the EHR's own launch URL, no URL carries the NHS number.
  page.seenURLs = page.seenURLs.filter((url) => !url.startsWith(`${env.url}/dev/launch`));
  assertNoNHSInURLs(page, [nhs]);
  await page.context().close();
});

test('EHR launch of a role with both care settings asks for the setting, then shows the child', async () => {
  const page = await newPage(browser);
  const nhs = env.fixtures.twoPlans;
  await page.goto(`${env.url}/dev/launch?persona=paediatrician&patient=${nhs}&app=${encodeURIComponent(app('launch'))}`);
  await page.getByRole('group', { name: 'Care setting' }).waitFor();
  await page.getByLabel('Unscheduled care (notifies the local authority)').check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();
  page.seenURLs = page.seenURLs.filter((url) => !url.startsWith(`${env.url}/dev/launch`));
  assertNoNHSInURLs(page, [nhs]);
  await page.context().close();
});

test('sign out from the header', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ed-clinician');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You have signed out').waitFor();
  await page.goto(app());
  await signInControl(page).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Find patient' }).count(), 0, 'signed out: no Find patient form');
  await page.context().close();
});

test('idle sign-out after 15 minutes', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ed-clinician');
  await setClock(new Date(env.start.getTime() + 16 * 60 * 1000));
  await page.reload();
  assert.match(await text(page), /signed out after 15 minutes/);
  assert.equal(await page.getByRole('button', { name: 'Find patient' }).count(), 0, 'idle: no Find patient form');
  await checkA11y(page, 'signed out when idle');
  await checkNarrow(page, 'signed out when idle');
  await page.context().close();
});

// The warning before the idle sign-out (WCAG 2.2.1): the page's timers run
// on Playwright's clock and the server's on the test clock, both moved
// together, so that nothing waits 14 real minutes.
test('idle warning: "Stay signed in" keeps the session, and without it the page signs out', async () => {
  const page = await newPage(browser);
  await page.clock.install();
  await signIn(page, 'ed-clinician');
  await findPatient(page, spaced(env.fixtures.twoPlans));
  const alert = page.getByRole('heading', { name: 'Child protection alert present' });
  await alert.waitFor();
  const minutes = (n) => new Date(env.start.getTime() + n * 60_000);
  const warning = page.getByRole('alertdialog', { name: 'Your session is about to end' });
  const stay = warning.getByRole('button', { name: 'Stay signed in' });
  assert.equal(await warning.count(), 0, 'no warning before its time');

  await setClock(minutes(14));
  await page.clock.fastForward('14:00');
  await warning.waitFor();
  assert.match((await warning.innerText()).replace(/\s+/g, ' '), /You will be signed out in 1 minute because there has been no activity\./);
  assert.ok(await stay.evaluate((b) => b === document.activeElement), 'focus is on "Stay signed in"');
  await checkA11y(page, 'idle warning');
  await checkNarrow(page, 'idle warning');
  await page.keyboard.press('Enter');
  await warning.waitFor({ state: 'hidden' });
  assert.equal(new URL(page.url()).pathname, '/app/patient', 'the child\'s page stays');

  // 28 minutes after the page was shown, 14 after "Stay signed in": still signed in.
  await setClock(minutes(28));
  await page.reload();
  await alert.waitFor();

  // No activity for 16 minutes: the warning, then the start page says why.
  await setClock(minutes(44));
  await page.clock.fastForward('14:00');
  await warning.waitFor();
  await page.clock.fastForward('01:10');
  await page.getByText('signed out after 15 minutes').waitFor();
  assert.equal(new URL(page.url()).pathname, '/app/');
  assert.equal(await alert.count(), 0, 'the child\'s page is gone');
  await page.context().close();
});
