// Writes the documentation's screenshots (run by scripts/screenshots, not a test): Alice
// and Bob planning a trip, seen by Alice at desktop size (1280 × 800) and on a phone
// (360 × 740), light and dark, and the Share dialog with its QR code. Alice has compared
// Bob's fingerprint, so his name carries the Verified mark.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startServer } from '../harness.mjs';
import { drawnPicture, enterRoom, launchBrowser, newPerson, repoRoot, say, waitForMembers, waitForMessage } from './browser-harness.mjs';

const outDir = path.resolve(repoRoot, process.argv[2] ?? 'docs/screenshots');

async function conversation(browser, server, viewport, colorScheme) {
  const alice = await newPerson(browser, { viewport, colorScheme });
  await enterRoom(alice, server.url, 'Alice');
  const bob = await newPerson(browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  // Alice compares fingerprints with Bob (in person) and marks his key as verified.
  const drawer = alice.page.getByRole('button', { name: /^Online/ });
  if (await drawer.isVisible()) await drawer.click();
  await alice.page.locator('.member-list .member', { hasText: 'Bob' }).click();
  await alice.page.getByRole('dialog').getByRole('button', { name: 'Mark as verified' }).click();
  await alice.page.keyboard.press('Escape');
  if (await drawer.isVisible()) await alice.page.keyboard.press('Escape');
  const lines = [
    [bob, 'Bob', 'Hi Alice! I read you my fingerprint: 3 groups matched, all good.'],
    [alice, 'Alice', 'Same here. So: the pass on Saturday?'],
    [bob, 'Bob', 'Yes! Train at 9:40 from platform 3, back by 18:00. Timetable: https://example.org/timetable'],
    [alice, 'Alice', 'Perfect. I will bring the thermos and the map.'],
  ];
  for (const [from, name, text] of lines) {
    await say(from.page, text);
    await waitForMessage(alice.page, name, text);
  }
  await bob.page.locator('.composer input[type=file]').setInputFiles({ name: 'view-from-the-pass.png', mimeType: 'image/png', buffer: await drawnPicture(bob.page) });
  await alice.page.waitForFunction(() => (document.querySelector('li.msg.file img.preview')?.naturalWidth ?? 0) > 0);
  await say(bob.page, 'That is the view from the top last year.');
  await waitForMessage(alice.page, 'Bob', 'That is the view from the top last year.');
  await alice.page.locator('.scroller').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('See you');
  await alice.page.locator('.typing', { hasText: 'Bob is typing…' }).waitFor();
  return { alice, bob };
}

await mkdir(outDir, { recursive: true });
const server = await startServer();
const browser = await launchBrowser();
const written = [];
try {
  for (const [label, viewport] of [['desktop', { width: 1280, height: 800 }], ['mobile', { width: 360, height: 740 }]]) {
    for (const colorScheme of ['light', 'dark']) {
      const { alice, bob } = await conversation(browser, server, viewport, colorScheme);
      const file = path.join(outDir, `${label}-${colorScheme}.png`);
      await alice.page.screenshot({ path: file });
      written.push(file);
      if (label === 'desktop' && colorScheme === 'dark') {
        await alice.page.getByRole('button', { name: 'Share invite link' }).click();
        await alice.page.getByRole('dialog', { name: 'Invite people' }).waitFor();
        const share = path.join(outDir, 'share-dialog.png');
        await alice.page.screenshot({ path: share });
        written.push(share);
      }
      if (alice.errors.length > 0) throw new Error(`console errors: ${alice.errors.join('\n')}`);
      await alice.context.close();
      await bob.context.close();
    }
  }
} finally {
  await browser.close();
  await server.stop();
}
for (const file of written) console.log(`wrote ${path.relative(repoRoot, file)}`);
