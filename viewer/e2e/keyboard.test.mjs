// Keyboard-only use (issue 11, item 12): a practitioner signs in, finds a
// child, reads the alert and signs out with Tab, typing and Enter alone.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { env, app, launch, newPage, personaButton, signInControl, spaced, resetClock } from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });
beforeEach(resetClock);

/**
 * Presses Tab until target has the focus, and fails if it is not reached
 * within max presses: an element the keyboard cannot reach fails here.
 */
async function tabTo(page, target, max = 60) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((el) => el === document.activeElement)) return i + 1;
  }
  assert.fail(`not reachable with Tab in ${max} presses: ${target}`);
}

test('keyboard only: sign in, find a child, read the alert, sign out', async () => {
  const page = await newPage(browser);
  await page.goto(app());
  await tabTo(page, signInControl(page));
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/dev\/authorize/);

  await tabTo(page, personaButton(page, 'ed-clinician'));
  await page.keyboard.press('Enter');
  await page.getByRole('button', { name: 'Sign out' }).waitFor();

  // The first stop on a signed-in page is the skip link, and it leads to main.
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to main content' });
  assert.ok(await skip.evaluate((el) => el === document.activeElement), 'the skip link is the first Tab stop');

  await tabTo(page, page.getByLabel('NHS number'));
  await page.keyboard.type(spaced(env.fixtures.twoPlans));
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Child protection alert present' }).waitFor();

  await tabTo(page, page.getByRole('button', { name: 'Sign out' }));
  await page.keyboard.press('Enter');
  await page.getByText('You have signed out').waitFor();
  await page.context().close();
});
