// Replies, reactions, edits and deletions between two browsers, used the way a keyboard
// user does (focus and keys, no mouse), one of them on a 360 px phone in dark mode: every
// control is reachable and labelled, nothing leaves the screen sideways, and what one
// person does shows for the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoErrors, enterRoom, newPerson, say, serverAndBrowser, waitForMessage, waitForMembers } from './browser-harness.mjs';

const env = serverAndBrowser();

/** Whether the page scrolls sideways (something wider than the screen). */
const overflows = (page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);

test('with the keyboard, on a 360 px phone in dark mode: reply, react, edit and delete', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser, { viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  const phone = bob.page;
  const composer = phone.getByLabel('Message', { exact: true });

  await say(alice.page, 'Shall we go for a walk along the river this afternoon?');
  const question = await waitForMessage(phone, 'Alice', 'Shall we go for a walk along the river this afternoon?');

  // Reply: the button by keyboard, the quote above the composer, the composer focused.
  const replyButton = question.getByRole('button', { name: 'Reply to Alice' });
  await replyButton.focus();
  await phone.keyboard.press('Enter');
  const bar = phone.locator('.reply-bar');
  await bar.filter({ hasText: 'Replying to Alice' }).waitFor();
  assert.equal(await phone.evaluate(() => document.activeElement?.id), 'composer-input', 'the composer takes the focus');
  assert.ok(await bar.getByRole('button', { name: 'Cancel reply' }).isVisible());
  await phone.keyboard.type('Yes, at three.');
  await phone.keyboard.press('Enter');
  const answer = await waitForMessage(alice.page, 'Bob', 'Yes, at three.');
  assert.match(await answer.locator('.reply-quote').textContent(), /Alice.*Shall we go for a walk/);
  assert.equal(await overflows(phone), false, 'nothing wider than the phone');

  // React: the picker opens on Enter with the focus on its first emoji; Escape closes it
  // and gives the focus back to the React button.
  const reactButton = question.getByRole('button', { name: 'React', exact: true });
  await reactButton.focus();
  await phone.keyboard.press('Enter');
  assert.equal(await reactButton.getAttribute('aria-expanded'), 'true');
  assert.equal(await phone.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'React with thumbs up');
  await phone.keyboard.press('Escape');
  assert.equal(await reactButton.getAttribute('aria-expanded'), 'false');
  assert.equal(await phone.evaluate(() => document.activeElement?.textContent), 'React');
  await phone.keyboard.press('Enter');
  await phone.keyboard.press('Tab');
  await phone.keyboard.press('Enter'); // the second emoji: a heart
  const heart = question.locator('.reaction', { hasText: '❤️' });
  await heart.waitFor();
  assert.equal(await heart.getAttribute('aria-pressed'), 'true');
  assert.match(await heart.getAttribute('aria-label'), /^❤️ 1: Bob \(yours; select to take it back\)$/);
  const aliceSees = (await waitForMessage(alice.page, 'Alice', 'Shall we go for a walk along the river this afternoon?')).locator('.reaction', { hasText: '❤️' });
  await aliceSees.waitFor();
  assert.equal(await aliceSees.getAttribute('aria-pressed'), 'false');
  assert.equal(await aliceSees.getAttribute('title'), 'Bob');
  const chipBox = await heart.boundingBox();
  assert.ok(chipBox !== null && chipBox.x + chipBox.width <= 360, 'the chip is on the screen');

  // Edit: Up in the empty composer opens the last own text; Enter saves.
  await composer.focus();
  await phone.keyboard.press('ArrowUp');
  const editor = phone.getByRole('textbox', { name: 'Text of your message' });
  await editor.waitFor();
  assert.equal(await phone.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Text of your message');
  await phone.keyboard.press('End');
  await phone.keyboard.press('Backspace');
  await phone.keyboard.type(', by the bridge.');
  await phone.keyboard.press('Enter');
  const edited = await waitForMessage(alice.page, 'Bob', 'Yes, at three, by the bridge.');
  await edited.locator('.meta .edited', { hasText: 'edited' }).waitFor();
  // Its id now: once deleted, the text the locator looks for is gone.
  const editedId = await edited.getAttribute('data-id');
  const ownEdited = await waitForMessage(phone, 'Bob', 'Yes, at three, by the bridge.');
  await ownEdited.locator('.meta .edited').waitFor();
  // Alice's own text, not Bob's: Bob has no Edit or Delete for it.
  assert.equal(await question.getByRole('button', { name: /your message/ }).count(), 0);

  // Delete: a confirmation that Escape cancels (nothing changes), then Delete.
  const deleteButton = ownEdited.getByRole('button', { name: 'Delete your message' });
  await deleteButton.focus();
  await phone.keyboard.press('Enter');
  const dialog = phone.getByRole('dialog', { name: 'Delete this message?' });
  await dialog.waitFor();
  assert.equal(await phone.evaluate(() => document.activeElement?.textContent), 'Cancel', 'Cancel is the default');
  await phone.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  await waitForMessage(alice.page, 'Bob', 'Yes, at three, by the bridge.');
  await deleteButton.focus();
  await phone.keyboard.press('Enter');
  await dialog.waitFor();
  await phone.keyboard.press('Shift+Tab');
  assert.equal(await phone.evaluate(() => document.activeElement?.textContent), 'Delete');
  await phone.keyboard.press('Enter');
  const gone = alice.page.locator(`li.msg[data-id="${editedId}"]`);
  await gone.locator('.deleted-label', { hasText: 'message deleted' }).waitFor();
  assert.equal(await alice.page.getByText('by the bridge').count(), 0, 'the text is gone for Alice');
  assert.equal(await phone.getByText('by the bridge').count(), 0, 'and for Bob');
  assert.equal(await overflows(phone), false);

  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});
