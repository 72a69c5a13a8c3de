// "Report a discrepancy" by a clinician, seen and resolved by the Trust's
// safeguarding lead at /app/safeguarding.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { env, app, launch, newPage, signIn, text, resetClock, reportDiscrepancy } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });
beforeEach(resetClock);

test('a clinician reports a discrepancy; the safeguarding lead sees it and marks it resolved', async () => {
  const note = await reportDiscrepancy(browser, env.fixtures.noPlan, 'Missing alert', {
    onReported: async (page) => { // the reporter may not open the safeguarding page
      const res = await page.goto(app('safeguarding'));
      assert.equal(res.status(), 403, 'only the safeguarding lead opens /app/safeguarding');
      assert.doesNotMatch(await text(page), /Mark resolved/);
    },
  });

  const page = await newPage(browser);
  await signIn(page, 'safeguarding-lead');
  await page.goto(app('safeguarding'));
  await page.getByRole('heading', { name: 'Discrepancy reports' }).waitFor();
  const resolve = page.getByRole('button', { name: 'Mark resolved' });
  const item = page.locator('tr, li, article, section, div').filter({ hasText: note, has: resolve }).last();
  assert.ok(await item.count() === 1, 'the report is listed with a "Mark resolved" button');
  assert.match(await item.innerText(), /Missing alert/);
  await item.getByRole('button', { name: 'Mark resolved' }).click();
  await page.waitForLoadState('domcontentloaded');
  await page.getByRole('heading', { name: 'Discrepancy reports' }).waitFor();
  const still = page.locator('tr, li, article, section, div').filter({ hasText: note, has: resolve });
  assert.equal(await still.count(), 0, 'once resolved, the report has no "Mark resolved" button');
  await page.context().close();
});
