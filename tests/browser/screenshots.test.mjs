// Screenshots of a real conversation at desktop (1280×800) and phone (390×844) sizes, in
// light and dark themes, saved under test-artifacts/ (gitignored) for people to look at.
// Also checks that nothing overflows horizontally at 360 px, the narrowest width supported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  artifactPath, assertNoErrors, drawnPicture, enterRoom, newPerson, say, waitForMembers, waitForMessage,
  serverAndBrowser,
} from './browser-harness.mjs';

const env = serverAndBrowser();

async function conversation(viewport, colorScheme) {
  const alice = await newPerson(env.browser, { viewport, colorScheme });
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  const carol = await newPerson(env.browser);
  await enterRoom(carol, alice.page.url(), 'Carol');
  await waitForMembers(alice.page, 3);
  await say(bob.page, 'Hi! Is this the room for the trip planning?');
  await waitForMessage(alice.page, 'Bob', 'Hi! Is this the room for the trip planning?');
  await say(alice.page, 'Yes! Compare fingerprints in the member list before we share anything private.');
  await waitForMessage(carol.page, 'Alice', 'Yes! Compare fingerprints in the member list before we share anything private.');
  await say(carol.page, 'Mine reads the same on your screen. Train at 9:40, platform 3: https://example.org/timetable');
  await waitForMessage(alice.page, 'Carol', 'Mine reads the same on your screen. Train at 9:40, platform 3: https://example.org/timetable');
  // A picture, drawn on the spot, shared end-to-end encrypted.
  const picture = await drawnPicture(carol.page, 480, 270);
  await carol.page.locator('.composer input[type=file]').setInputFiles({ name: 'view-from-the-pass.png', mimeType: 'image/png', buffer: picture });
  await alice.page.waitForFunction(() => (document.querySelector('li.msg.file img.preview')?.naturalWidth ?? 0) > 0);
  await alice.page.locator('.scroller').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('Great');
  await alice.page.locator('.typing', { hasText: 'Bob is typing…' }).waitFor();
  return { alice, others: [bob, carol] };
}

for (const [label, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
  for (const colorScheme of ['light', 'dark']) {
    test(`screenshot: ${label} ${colorScheme} (${viewport.width}×${viewport.height})`, async () => {
      const { alice, others } = await conversation(viewport, colorScheme);
      await alice.page.screenshot({ path: artifactPath(`chat-${label}-${colorScheme}.png`) });
      if (label === 'desktop' && colorScheme === 'light') {
        await alice.page.locator('.member-list .member', { hasText: 'Carol' }).click();
        await alice.page.screenshot({ path: artifactPath('fingerprint-dialog.png') });
        await alice.page.keyboard.press('Escape');
      }
      if (label === 'phone') {
        await alice.page.getByRole('button', { name: /^Online/ }).click();
        await alice.page.screenshot({ path: artifactPath(`members-${label}-${colorScheme}.png`) });
      }
      assertNoErrors(alice, 'Alice');
      for (const person of [alice, ...others]) await person.context.close();
    });
  }
}

test('landing page screenshot and no horizontal overflow at 360 px', async () => {
  const person = await newPerson(env.browser, { viewport: { width: 360, height: 740 } });
  await person.page.goto(env.server.url);
  await person.page.screenshot({ path: artifactPath('landing-360.png') });
  await enterRoom(person, env.server.url, 'A rather long name for a narrow phone');
  await say(person.page, 'a-very-long-word-without-any-spaces-that-must-wrap-instead-of-overflowing-the-screen-'.repeat(3));
  const overflow = await person.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, 'nothing is wider than a 360 px screen');
  await person.page.screenshot({ path: artifactPath('chat-360.png') });
  assertNoErrors(person, 'person');
  await person.context.close();
});
