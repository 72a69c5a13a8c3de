// axe-core on every page of the viewer (no serious or critical violation),
// each page readable at 375 px wide, and the README's screenshots when
// CPIS_SCREENSHOTS_DIR is set.
import { test, before, after, beforeEach } from 'node:test';
import {
  env, app, launch, newPage, signIn, signInControl, findPatient, spaced, checkA11y, checkNarrow, screenshot,
  resetClock, reportDiscrepancy,
} from './helpers.mjs';

const fx = env.fixtures;
let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });
beforeEach(resetClock);

/** The checks every page gets. */
async function check(page, name) {
  await checkA11y(page, name);
  await checkNarrow(page, name);
}

test('signed-out home and the dev authorize page', async () => {
  const page = await newPage(browser);
  await page.goto(app());
  await check(page, 'home (signed out)');
  await screenshot(page, 'home');
  await signInControl(page).click();
  await page.waitForURL(/\/dev\/authorize/);
  await check(page, 'dev authorize');
  await screenshot(page, 'authorize');
  await page.context().close();
});

test('find patient, the patient pages, the directory, signed out', async () => {
  const page = await newPage(browser);
  await signIn(page, 'ed-clinician');
  await check(page, 'home (signed in, Find patient)');
  await screenshot(page, 'find-patient');
  for (const [name, nhs] of [['patient-alert', fx.twoPlans], ['patient-ended', fx.ended], ['patient-unborn', fx.mother],
    ['patient-out-of-area', fx.outOfArea], ['patient-no-alert', fx.noPlan], ['patient-invalid', fx.invalid]]) {
    await page.goto(app());
    await findPatient(page, spaced(nhs));
    await check(page, name);
    if (['patient-alert', 'patient-no-alert'].includes(name)) await screenshot(page, name);
  }
  await page.goto(app('directory'));
  await page.getByRole('heading', { name: 'Local authority directory' }).waitFor();
  await check(page, 'directory');
  await screenshot(page, 'directory');
  await page.goto(app('safeguarding'));
  await check(page, 'safeguarding refused (403)');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You have signed out').waitFor();
  await check(page, 'signed out');
  await page.context().close();
});

test('the care-setting choices, the discrepancy confirmation and the safeguarding page', async () => {
  let page = await newPage(browser);
  await signIn(page, 'paediatrician');
  await check(page, 'find patient with care setting');
  await page.context().close();

  page = await newPage(browser);
  await page.goto(`${env.url}/dev/launch?persona=paediatrician&patient=${fx.twoPlans}&app=${encodeURIComponent(app('launch'))}`);
  await page.getByRole('group', { name: 'Care setting' }).waitFor();
  await check(page, 'EHR launch: choose the care setting');
  await page.context().close();

  await reportDiscrepancy(browser, fx.ended, 'Wrong step-down status', {
    note: 'The LA told us this plan was extended in January.',
    onReported: (p) => check(p, 'discrepancy reported'),
  });
  page = await newPage(browser);
  await signIn(page, 'safeguarding-lead');
  await page.goto(app('safeguarding'));
  await page.getByRole('heading', { name: 'Discrepancy reports' }).waitFor();
  await check(page, 'safeguarding');
  await screenshot(page, 'safeguarding');
  await page.context().close();
});
