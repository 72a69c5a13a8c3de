// SMART launches, sign-out and idle sign-out, through the viewer in Chromium.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  env, app, launch, newPage, signIn, personaButton, signInControl, resetClock, setClock, text, assertNoNHSInURLs, checkA11y, checkNarrow,
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
